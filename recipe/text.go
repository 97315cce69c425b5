package recipe

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/fsutil"
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
	// Fallback is a line to print when the template is not the one the
	// model folder holds: it had none and a built-in stands in, or the
	// adapter training goes on from carries another (TextFor); "" otherwise.
	Fallback string
	// thinking is the enable_thinking passed to the template (nil: not
	// passed, the template's own default), see SetThinking.
	thinking *bool
	// bosToken and eosToken are the model's tokenizer_config.json's, which
	// a template file (data.template) renders as bos_token and eos_token,
	// as the model's own template does.
	bosToken, eosToken string
	// plain: data.template none (see PlainTemplate).
	plain bool
}

// PlainTemplate is data.template's name for no chat template: text
// prompt/completion pairs are joined as plain text, as TRL's SFTTrainer
// joins its standard records (prep.Preprocessor.Plain), and
// conversations are refused. What stands in for a template where one is
// still asked for (an evaluation's prompts, the chat_template.jinja an
// adapter carries) writes the messages' text one after another, after
// the model's bos_token: the text the adapter learnt to continue.
const PlainTemplate = "none"

// plainSource is that stand-in.
const plainSource = "{{ bos_token }}{% for message in messages %}{{ message['content'] }}{% endfor %}"

// LoadText reads a model folder's tokenizer and its own chat template
// (LoadTextFor with template "auto").
func LoadText(dir string, eosFallback int) (Text, error) {
	return LoadTextFor(dir, "auto", eosFallback)
}

// TextFor is the tokenizer and chat template a run of o tokenizes with:
// o.Template's (LoadTextFor) with o.Thinking passed to it. Training,
// evaluation and ftune data validate and prepare all take it here, so
// their tokens are the same.
//
// Training on from an adapter (o.InitAdapter) with no data.template of its
// own renders with the template that adapter carries (chat_template.jinja)
// when it is not the model's: the format the adapter learnt, as
// ftune.Load prompts it; Fallback says so.
func TextFor(o Options, eosFallback int) (Text, error) {
	inherited, err := adapterTemplateFile(o, o.InitAdapter)
	if err != nil {
		return Text{}, err
	}
	if inherited != "" {
		o.Template = inherited
	}
	p, err := LoadTextFor(o.ModelDir, o.Template, eosFallback)
	if err != nil {
		return Text{}, err
	}
	switch {
	case inherited == PlainTemplate:
		p.Fallback = fmt.Sprintf("data.template none, as training.lora.init_from's adapter was trained (its %s is the stand-in that setting writes; set data.template to choose another)", chat.TemplateFile)
	case inherited != "":
		p.Fallback = fmt.Sprintf("chat template: the one training.lora.init_from's adapter carries, %s (set data.template to choose another)", inherited)
	}
	if err := p.SetThinking(o.Thinking); err != nil {
		return Text{}, fmt.Errorf("data.enable_thinking: %w", err)
	}
	return p, nil
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
	raw, err := fsutil.ReadFileLimit(filepath.Join(dir, "tokenizer.json"), tokenizer.MaxFileBytes)
	if err != nil {
		return Text{}, err
	}
	p := Text{tok: tok, eos: eos, pad: pad, TokenizerHash: prep.HashBytes(raw)}
	if path := filepath.Join(dir, "tokenizer_config.json"); fileExists(path) {
		c, err := tokenizer.ReadConfig(path)
		if err != nil {
			return Text{}, err
		}
		p.bosToken, p.eosToken = c.BOSToken, c.EOSToken
	}
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
	p.tmpl = tmpl
	p.hashTemplate()
	return p, nil
}

// hashTemplate sets TemplateHash from what the rendering depends on: the
// template and the variables passed to it.
func (p *Text) hashTemplate() {
	src := p.tmpl.Source()
	if p.plain {
		// The plain reading is not the stand-in's rendering: keyed apart
		// from a template file that holds the same source.
		src += "\x00template=none"
	}
	if p.thinking != nil {
		src += fmt.Sprintf("\x00enable_thinking=%v", *p.thinking)
	}
	p.TemplateHash = prep.HashString(src)
}

// readsThinking says whether a template reads enable_thinking: passing it
// to one that does not would change nothing, and the user would not know.
func readsThinking(t *chat.Template) bool { return strings.Contains(t.Source(), "enable_thinking") }

// SetThinking passes enable_thinking to the template for every rendering
// (nil: not passed). Thinking templates such as Qwen3's write an empty
// <think> block into the generation prompt when it is false, so a trained
// answer starts after it; the template's rendering of the answers is
// otherwise the same. A template that does not read the variable is an
// error: the setting would be dropped.
func (p *Text) SetThinking(v *bool) error {
	if v != nil && !readsThinking(p.tmpl) {
		return fmt.Errorf("enable_thinking is set to %v but the chat template %s does not read it (only thinking models' templates, such as Qwen3's, do): remove the setting, or use such a template", *v, p.tmpl.Name())
	}
	p.thinking = v
	p.hashTemplate()
	return nil
}

// Thinking is the enable_thinking passed to the template (nil: none).
func (p Text) Thinking() *bool { return p.thinking }

// UseTemplate replaces the model's chat template by a built-in one
// (chatml, llama3, llama2, mistral, gemma, phi3, phi4, alpaca), none (no
// template: PlainTemplate) or a template file (a name
// ending in .jinja or .j2, or any path with a folder in it, as the run
// file's data.template accepts).
func (p *Text) UseTemplate(name string) error {
	var t *chat.Template
	var err error
	if name == PlainTemplate {
		// Rendered text is encoded with no special tokens added, so the
		// stand-in writes the model's bos_token itself.
		t, err = chat.New(PlainTemplate, plainSource, p.bosToken, p.eosToken)
	} else if config.IsTemplateFile(name) {
		var src []byte
		if src, err = fsutil.ReadFileLimit(name, chat.MaxTemplateBytes); err != nil {
			return err
		}
		// The model's special tokens: a template file that writes
		// {{ bos_token }} (Llama 3's) or ends turns with eos_token
		// (Mistral's) rendered them as "", training rows without the BOS
		// and answers without the token that ends them.
		if t, err = chat.New(filepath.Base(name), string(src), p.bosToken, p.eosToken); err != nil {
			err = fmt.Errorf("chat template %s: %w", name, err)
		}
	} else {
		t, err = chat.Builtin(name)
	}
	if err != nil {
		return err
	}
	if p.thinking != nil && !readsThinking(t) {
		return fmt.Errorf("enable_thinking is set to %v but the chat template %s does not read it (only thinking models' templates, such as Qwen3's, do)", *p.thinking, t.Name())
	}
	p.tmpl, p.Fallback, p.plain = t, "", name == PlainTemplate
	p.hashTemplate()
	return nil
}

// Preprocessor returns the data pipeline's preprocessor for examples up to
// maxLen tokens.
func (p Text) Preprocessor(maxLen int) *prep.Preprocessor { return p.preprocessor(maxLen) }

func (p Text) encode(s string, special bool) ([]int, error) {
	e, err := p.tok.Encode(s, special)
	return e.IDs, err
}

func (p Text) render(msgs []format.Message, tools string, gen bool) (string, error) {
	return p.renderContext(context.Background(), msgs, tools, gen)
}

// renderContext renders under ctx: a template is code from a model folder,
// and its rendering stops on cancellation (and on its budget). tools is
// the conversation's list of tools ("" for none).
func (p Text) renderContext(ctx context.Context, msgs []format.Message, tools string, gen bool) (string, error) {
	cm := ChatMessages(msgs)
	opts := chat.RenderOptions{AddGenerationPrompt: gen, Tools: tools}
	if p.thinking != nil {
		opts.Vars = map[string]any{"enable_thinking": *p.thinking}
	}
	return p.tmpl.RenderWith(ctx, cm, opts)
}

// ChatMessages are a record's messages as the chat template takes them.
func ChatMessages(msgs []format.Message) []chat.Message {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, c := range m.ToolCalls {
			cm[i].ToolCalls = append(cm[i].ToolCalls, chat.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
		}
	}
	return cm
}

// FormatMessages are chat messages as records hold them (ChatMessages'
// inverse).
func FormatMessages(cm []chat.Message) []format.Message {
	msgs := make([]format.Message, len(cm))
	for i, m := range cm {
		msgs[i] = format.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, c := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, format.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
		}
	}
	return msgs
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

// prep uses the prefix encoders only when the encoder has them: assert it
// does, so a signature drifting apart fails the build instead of quietly
// encoding whole records again.
var (
	_ prep.PrefixEncoder       = offsetEncoder{}
	_ prep.PrefixOffsetEncoder = offsetEncoder{}
)

// EncodePrefix and EncodeOffsetsPrefix let prep encode only as much of a
// long record as the row keeps (prep.PrefixEncoder): the same first ids,
// at a cost in proportion to them rather than to the record.
func (e offsetEncoder) EncodePrefix(s string, special bool, n int) ([]int, error) {
	enc, err := e.tok.EncodePrefix(s, special, n)
	return enc.IDs, err
}

func (e offsetEncoder) EncodeOffsetsPrefix(s string, special bool, n int) ([]int, [][2]int, error) {
	return e.tok.EncodeOffsetsPrefix(s, special, n)
}

func (p Text) preprocessor(maxLen int) *prep.Preprocessor {
	return &prep.Preprocessor{
		Enc:          offsetEncoder{p.tok},
		Tmpl:         prep.ToolRenderFunc(p.renderContext),
		TemplateName: p.tmpl.Name(),
		Plain:        p.plain,
		EOS:          p.eos,
		Opts:         prep.Options{MaxLen: maxLen},
	}
}
