package main

import (
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// loaded is a model with its tokenizer and chat template.
type loaded struct {
	dir      string
	model    *nn.Model
	tok      *tokenizer.Tokenizer
	template *chat.Template
}

func loadModel(name string) (*loaded, error) {
	dir, err := recipe.ResolveModel(name)
	if err != nil {
		return nil, err
	}
	m, err := nn.Load(dir, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	tmpl, err := chat.Load(dir)
	if err != nil {
		// A model without a chat template gets ChatML, the most common one.
		if tmpl, err = chat.Builtin("chatml"); err != nil {
			return nil, err
		}
	}
	return &loaded{dir: dir, model: m, tok: tok, template: tmpl}, nil
}

// stopTokens are the ids that end a reply: EOS from config and tokenizer,
// plus ChatML's <|im_end|> when the vocabulary has it.
func (l *loaded) stopTokens() []int {
	stops := append([]int(nil), l.model.Config.EOSTokenIDs...)
	if id, ok := l.tok.EOS(); ok {
		stops = append(stops, id)
	}
	if id, ok := l.tok.TokenToID("<|im_end|>"); ok {
		stops = append(stops, id)
	}
	return stops
}
