package main

import (
	"fmt"
	"os"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
)

// resolveModel maps "tiny-base" (or "") to the embedded model's folder and
// checks that any other name is a model folder.
func resolveModel(name string) (string, error) {
	if name == "" || name == assets.TinyBase {
		return assets.Model(assets.TinyBase)
	}
	st, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("model %q: %w", name, err)
	}
	if !st.IsDir() || !nn.Exists(name) {
		return "", fmt.Errorf("model %q: not a Hugging Face model folder (no config.json)", name)
	}
	return name, nil
}

// loaded is a model with its tokenizer and chat template.
type loaded struct {
	dir      string
	model    *nn.Model
	tok      *tokenizer.Tokenizer
	template *chat.Template
}

func loadModel(name string) (*loaded, error) {
	dir, err := resolveModel(name)
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
