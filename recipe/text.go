package recipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
)

// Text is a model's tokenizer and chat template adapted to the data
// pipeline's interfaces.
type Text struct {
	tok  *tokenizer.Tokenizer
	tmpl *chat.Template
	eos  int
	pad  int
	// TokenizerHash and TemplateHash identify them for token caches.
	TokenizerHash, TemplateHash prep.Hash
	// Fallback is a line to print when the model had no chat template and a
	// built-in stands in ("" otherwise).
	Fallback string
}

// LoadText reads a model folder's tokenizer and its own chat template
// (LoadTextFor with template "auto").
func LoadText(dir string, eosFallback int) (Text, error) {
	return LoadTextFor(dir, "auto", eosFallback)
}

// LoadTextFor reads a model folder's tokenizer and the chat template a run
// asks for: "" or "auto" is the model's own, a built-in name or a template
// file replaces it (see UseTemplate). A model template that does not parse
// is an error naming its file; a model without a template gets its
// family's built-in (chat.DefaultFor: ChatML when none is recognised), and
// Fallback says so for the caller to print. eosFallback is used when the
// tokenizer names no EOS.
func LoadTextFor(dir, template string, eosFallback int) (Text, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return Text{}, err
	}
	eos, ok := tok.EOS()
	if !ok {
		eos = eosFallback
	}
	pad, ok := tok.PAD()
	if !ok {
		pad = eos
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return Text{}, err
	}
	p := Text{tok: tok, eos: eos, pad: pad, TokenizerHash: prep.HashBytes(raw)}
	if template != "" && template != "auto" {
		return p, p.UseTemplate(template)
	}
	tmpl, err := chat.Load(dir)
	switch {
	case errors.Is(err, chat.ErrNoTemplate):
		var name string
		if tmpl, name, err = chat.DefaultFor(tok); err != nil {
			return Text{}, err
		}
		p.Fallback = fmt.Sprintf("chat template: %s has none; using the built-in %s (set data.template to choose another)", dir, name)
	case err != nil:
		return Text{}, fmt.Errorf("%w (the model's chat template does not parse: fix it, or set data.template to use another)", err)
	}
	p.tmpl, p.TemplateHash = tmpl, prep.HashString(tmpl.Source())
	return p, nil
}

// UseTemplate replaces the model's chat template by a built-in one
// (chatml, llama3, llama2, mistral, gemma, phi3, phi4, alpaca) or a template file (a name
// ending in .jinja or .j2, or any path with a folder in it, as the run
// file's data.template accepts).
func (p *Text) UseTemplate(name string) error {
	var t *chat.Template
	var err error
	if isTemplateFile(name) {
		var src []byte
		if src, err = os.ReadFile(name); err != nil {
			return err
		}
		if t, err = chat.New(filepath.Base(name), string(src), "", ""); err != nil {
			err = fmt.Errorf("chat template %s: %w", name, err)
		}
	} else {
		t, err = chat.Builtin(name)
	}
	if err != nil {
		return err
	}
	p.tmpl, p.Fallback = t, ""
	p.TemplateHash = prep.HashString(t.Source())
	return nil
}

// isTemplateFile says a template names a file rather than a built-in.
func isTemplateFile(s string) bool {
	return strings.HasSuffix(s, ".jinja") || strings.HasSuffix(s, ".j2") || strings.ContainsRune(s, filepath.Separator) || strings.ContainsRune(s, '/')
}

// Preprocessor returns the data pipeline's preprocessor for examples up to
// maxLen tokens.
func (p Text) Preprocessor(maxLen int) *prep.Preprocessor { return p.preprocessor(maxLen) }

func (p Text) encode(s string, special bool) ([]int, error) {
	e, err := p.tok.Encode(s, special)
	return e.IDs, err
}

func (p Text) render(msgs []format.Message, gen bool) (string, error) {
	return p.renderContext(context.Background(), msgs, gen)
}

// renderContext renders under ctx: a template is code from a model folder,
// and its rendering stops on cancellation (and on its budget).
func (p Text) renderContext(ctx context.Context, msgs []format.Message, gen bool) (string, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	return p.tmpl.RenderContext(ctx, cm, gen)
}

// offsetEncoder gives prep each token's byte span (prep.OffsetEncoder), so
// the trained ids are the whole rendering's: encoding each answer on its
// own would differ where a template's token swallows the whitespace after
// it (Phi-3's <|assistant|>).
type offsetEncoder struct{ tok *tokenizer.Tokenizer }

func (e offsetEncoder) Encode(s string, special bool) ([]int, error) {
	enc, err := e.tok.Encode(s, special)
	return enc.IDs, err
}

func (e offsetEncoder) EncodeOffsets(s string, special bool) ([]int, [][2]int, error) {
	return e.tok.EncodeOffsets(s, special)
}

func (p Text) preprocessor(maxLen int) *prep.Preprocessor {
	return &prep.Preprocessor{
		Enc:  offsetEncoder{p.tok},
		Tmpl: prep.ContextRenderFunc(p.renderContext),
		EOS:  p.eos,
		Opts: prep.Options{MaxLen: maxLen},
	}
}
