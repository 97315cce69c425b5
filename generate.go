package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// ErrContextFull is wrapped when a prompt leaves no room for a reply in
// the model's context (max_position_embeddings).
var ErrContextFull = nn.ErrContextFull

// GenerateOptions control one reply. The zero value is greedy decoding of
// up to 64 tokens. TopK, TopP, MinP and Seed shape sampling, which a
// Temperature above 0 turns on: with Temperature 0 (greedy, the most likely
// token every time) a TopK, TopP or MinP is refused (Validate), and Seed is
// unused. RepetitionPenalty and StopStrings apply to both.
//
// The order is transformers': the repetition penalty first, then the
// temperature, top-k, top-p and min-p.
//
// The options mean what they say whatever the model: unlike transformers'
// generate(), which samples as the model folder's generation_config.json
// says when its caller passes no sampling argument (and then keeps the 50
// most likely tokens unless top_k is given), the zero value is greedy and
// TopK 0 is every token; the folder's repetition_penalty, min_p and
// stop_strings are not applied either. The folder's defaults are
// Model.Net.Config.Generation; its Sampling method gives the options
// transformers would decode with, and its StopStrings field the stop
// strings (`ftune generate` uses them when no flag says otherwise).
type GenerateOptions struct {
	MaxNewTokens int     // 0 = 64
	Temperature  float64 // 0 = greedy
	TopK         int     // 0 = all tokens (not transformers' 50)
	TopP         float64 // 0 = off; else sample from the smallest set of tokens with probability ≥ TopP (ties at the edge: nn.GenerateOptions)
	// MinP, when sampling, keeps the tokens whose probability reaches MinP
	// times the most likely token's (after the temperature, top-k and
	// top-p), as transformers' min_p; 0 = off, at most 1.
	MinP float64
	// RepetitionPenalty is transformers' repetition_penalty: the logit of
	// every token id already in the sequence (the whole prompt, chat
	// template tokens included, and the reply so far) is divided by it, or
	// multiplied when negative, before anything else. Above 1 (1.1-1.3 are
	// usual) repeats get less likely; below 1 more. 0 or 1: off.
	RepetitionPenalty float64
	// StopStrings end the reply when its text comes to hold one of them,
	// as transformers' stop_strings: after each token, the text so far is
	// searched (a stop string may straddle tokens and end inside one).
	// Reply.Text ends before the first stop string found, which is left
	// out with whatever followed it in the same token, as a stop token is
	// (Reply.Tokens counts the token that completed it); OnText never
	// receives it either: text that may begin a stop string is held back
	// until the next tokens tell. Only the reply's text is searched, not
	// the prompt; special tokens are no text, but a stop string that is
	// one whole special token of the vocabulary stops when that token is
	// generated. Each must be non-empty.
	StopStrings []string
	// Seed starts the sampling stream: the same seed, options and prompt
	// give the same reply (0 is a seed like any other, not a random one).
	Seed uint64
	// OnText, when set, receives the reply as it is produced, in whole
	// characters (tokenizer.StreamDecoder); an error it returns stops
	// generation and is returned.
	OnText func(text string) error
	// Thinking is passed to the chat template as enable_thinking (Chat and
	// Conversation; nil: not passed, the template's default). Qwen3's
	// template thinks by default; false makes its generation prompt an
	// empty <think> block, so the reply is the answer alone. A template
	// that does not read the variable is an error, not a setting dropped.
	Thinking *bool
	// Tools are the functions the model may call (Chat and
	// Conversation), a JSON list of their schemas as Example.Tools: the
	// chat template shows them to the model, and the reply's text holds
	// its calls as the model's template writes them (parsing them is the
	// caller's). A template that does not show tools is an error
	// (ErrInvalidInput, Model.CheckTools), not a setting dropped.
	Tools json.RawMessage
}

// Why a reply ended.
const (
	StopToken   = "stop"        // the model produced a stop token
	StopLength  = "length"      // MaxNewTokens reached
	StopContext = "context"     // the model's context is full
	StopString  = "stop_string" // the reply reached one of GenerateOptions.StopStrings (Reply.Stop)
)

// Reply is one generated answer.
type Reply struct {
	Text         string
	PromptTokens int
	Tokens       int // new tokens, the stop token included
	// Stopped is why generation ended: StopToken, StopString, StopLength
	// or StopContext; "" when it ended on an error (a cancelled ctx, an
	// error from OnText, invalid options), which is no stop.
	Stopped string
	// Stop is the stop string that ended the reply (Stopped StopString;
	// "" otherwise). Text ends where it began.
	Stop string
	// DroppedTurns counts the oldest messages a Conversation removed so
	// that the prompt fits the context (0 for Generate and Chat).
	DroppedTurns int
}

// Validate reports options that Generate, Chat and Send refuse, without
// a model: a program can check what its user asked for before loading one.
// Its errors match ErrInvalidInput.
func (o GenerateOptions) Validate() error {
	switch {
	case o.MaxNewTokens < 0:
		return invalidf("generate: MaxNewTokens %d: want > 0 (0: the default, 64)", o.MaxNewTokens)
	case !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0): // NaN fails too
		return invalidf("generate: Temperature %g: want a finite value ≥ 0 (0: greedy)", o.Temperature)
	case o.TopK < 0:
		return invalidf("generate: TopK %d: want ≥ 0 (0: all tokens)", o.TopK)
	case !(o.TopP >= 0 && o.TopP <= 1):
		return invalidf("generate: TopP %g: want 0 < TopP ≤ 1, or 0 for off", o.TopP)
	case !(o.MinP >= 0 && o.MinP <= 1):
		return invalidf("generate: MinP %g: want 0 < MinP ≤ 1, or 0 for off", o.MinP)
	case !(o.RepetitionPenalty >= 0) || math.IsInf(o.RepetitionPenalty, 0):
		return invalidf("generate: RepetitionPenalty %g: want a finite value > 0 (above 1 discourages repeats), or 0 for off", o.RepetitionPenalty)
	case o.Temperature == 0 && (o.TopK != 0 || o.TopP != 0):
		// Greedy decoding never samples: the filters would be dropped
		// without a word, and the caller likely forgot the temperature.
		return invalidf("generate: TopK %d, TopP %g filter sampling, and Temperature 0 is greedy decoding, which does not sample: set Temperature above 0, or leave them 0", o.TopK, o.TopP)
	case o.Temperature == 0 && o.MinP != 0:
		return invalidf("generate: MinP %g filters sampling, and Temperature 0 is greedy decoding, which does not sample: set Temperature above 0, or leave it 0", o.MinP)
	}
	for i, s := range o.StopStrings {
		switch {
		case s == "":
			return invalidf("generate: StopStrings[%d] is empty: it would end every reply before its first token", i)
		case !utf8.ValidString(s):
			// A reply's text is UTF-8: it would never match.
			return invalidf("generate: StopStrings[%d] %q: byte %d is not valid UTF-8", i, s, invalidUTF8(s)+1)
		}
	}
	return nil
}

// Generate continues prompt as plain text (no chat template). The prompt
// is encoded with the tokenizer's special tokens (a Llama or Mistral
// tokenizer's BOS), as transformers' tokenizer(prompt) encodes it and as
// ftune trains on plain-text completions: a model, or an adapter trained on
// text, sees its prompts as it saw its training documents.
func (m *Model) Generate(ctx context.Context, prompt string, opt GenerateOptions) (Reply, error) {
	if err := m.ready("generate"); err != nil {
		return Reply{}, err
	}
	if err := start(ctx, opt); err != nil {
		return Reply{}, err
	}
	enc, err := m.Tokenizer.Encode(prompt, true)
	if err != nil {
		return Reply{}, inputErr(err)
	}
	return m.generate(ctx, enc.IDs, opt, m.stops)
}

// start is what Generate, Chat and Send check before any work: the
// options, and a ctx cancelled already (a long prompt's prefill would run
// for nothing).
func start(ctx context.Context, opt GenerateOptions) error {
	if err := checkCtx("generate", ctx); err != nil {
		return err
	}
	if err := opt.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// inputErr marks err as invalid input when it is about the caller's text
// (not UTF-8, an unknown role); other errors are returned as they are.
func inputErr(err error) error {
	if errors.Is(err, tokenizer.ErrInvalidUTF8) || errors.Is(err, chat.ErrUnknownRole) || errors.Is(err, chat.ErrBadTools) || errors.Is(err, prep.ErrNoToolSupport) {
		return invalid(err)
	}
	return err
}

// Chat renders the conversation with the model's chat template and
// generates the assistant's next message. No messages is refused
// (ErrInvalidInput). A conversation longer than the
// context is an error wrapping ErrContextFull (a Conversation drops old
// turns instead).
func (m *Model) Chat(ctx context.Context, msgs []Message, opt GenerateOptions) (Reply, error) {
	if err := m.ready("chat"); err != nil {
		return Reply{}, err
	}
	if err := start(ctx, opt); err != nil {
		return Reply{}, err
	}
	if len(msgs) == 0 {
		// The template would render its generation prompt alone, and the
		// model reply to nothing: a caller's slip (a history lost), not a
		// question.
		return Reply{}, invalidf("chat: no messages")
	}
	ids, err := m.chatPrompt(ctx, msgs, opt)
	if err != nil {
		return Reply{}, err
	}
	return m.generate(ctx, ids, opt, m.chatStops())
}

// chatStops are the ids that end a reply to a chat prompt: the model's
// stop tokens and the chat template's end-of-turn token (a built-in
// template's, chat.Template.EndOfTurn; Gemma's <end_of_turn> is no EOS of
// a folder that ships no template of its own).
func (m *Model) chatStops() []int {
	return m.Net.StopTokens(m.Tokenizer, m.Template.EndOfTurn())
}

// ErrNoThinking is wrapped when GenerateOptions.Thinking is set for a chat
// template that does not read enable_thinking.
var ErrNoThinking = errors.New("the chat template does not read enable_thinking")

// CheckThinking returns an error wrapping ErrNoThinking when thinking is
// set (GenerateOptions.Thinking) and m's chat template does not read
// enable_thinking: a program can refuse the setting right after loading,
// before its first message. nil needs no support.
func (m *Model) CheckThinking(thinking *bool) error {
	if err := m.ready("chat"); err != nil {
		return err
	}
	if thinking != nil && !strings.Contains(m.Template.Source(), "enable_thinking") {
		return fmt.Errorf("chat: thinking %v: %w (%s; only thinking models' templates, such as Qwen3's, do)", *thinking, ErrNoThinking, m.Template.Name())
	}
	return nil
}

// CheckTools refuses tools (GenerateOptions.Tools) that are not a JSON
// list, or that m's chat template would not show the model (rendering a
// one-line conversation with and without them gives the same text), with
// an error matching ErrInvalidInput: a program can refuse the setting
// right after loading, before its first message. nil needs no support.
func (m *Model) CheckTools(ctx context.Context, tools json.RawMessage) error {
	if err := m.ready("chat"); err != nil {
		return err
	}
	if err := checkCtx("chat", ctx); err != nil {
		return err
	}
	if n, err := checkTools(tools); err != nil {
		return invalidf("chat: %w", err)
	} else if n == 0 {
		return nil
	}
	probe := []Message{{Role: "user", Content: "x"}}
	opts := chat.RenderOptions{AddGenerationPrompt: true}
	without, err := m.Template.RenderWith(ctx, probe, opts)
	if err != nil {
		return inputErr(err)
	}
	opts.Tools = string(tools)
	with, err := m.Template.RenderWith(ctx, probe, opts)
	if err != nil {
		return inputErr(err)
	}
	if with == without {
		return invalidf("chat: the chat template %s does not show tools to the model: the tools would be dropped", m.Template.Name())
	}
	return nil
}

// checkToolMessages refuses a conversation with tool calls or tool
// results that m's template leaves out (training's check, prep's probes):
// the reply would come to a prompt without them.
func (m *Model) checkToolMessages(ctx context.Context, msgs []Message) error {
	if !slices.ContainsFunc(msgs, func(x Message) bool { return len(x.ToolCalls) > 0 || x.Role == format.RoleTool }) {
		return nil
	}
	render := prep.ToolRenderFunc(func(ctx context.Context, ms []format.Message, tools string, gen bool) (string, error) {
		return m.Template.RenderWith(ctx, recipe.ChatMessages(ms), chat.RenderOptions{AddGenerationPrompt: gen, Tools: tools})
	})
	p := &prep.Preprocessor{Tmpl: render, TemplateName: m.Template.Name()}
	if err := p.WithContext(ctx).CheckTools(format.Example{Messages: recipe.FormatMessages(msgs)}); err != nil {
		return invalid(err)
	}
	return nil
}

// chatPrompt renders msgs with the generation prompt. An earlier reply's
// <think> block stays in its message: thinking templates (Qwen3's) drop
// it from history themselves, as they were trained.
func (m *Model) chatPrompt(ctx context.Context, msgs []Message, opt GenerateOptions) ([]int, error) {
	thinking := opt.Thinking
	if err := m.CheckThinking(thinking); err != nil {
		return nil, err
	}
	if err := m.CheckTools(ctx, opt.Tools); err != nil {
		return nil, err
	}
	tools := string(opt.Tools)
	if n, _ := checkTools(opt.Tools); n == 0 {
		tools = "" // [] is none: Llama 3.1's template writes its tool preamble for an empty list
	}
	if err := m.checkToolMessages(ctx, msgs); err != nil {
		return nil, err
	}
	// Checked per message: the tokenizer would name a byte of the rendered
	// template text, which the caller never saw. Messages are numbered
	// from 0, as msgs' indices and the template's role error
	// (chat.ErrUnknownRole) number them.
	for i, msg := range msgs {
		if at := invalidUTF8(msg.Content); at >= 0 {
			return nil, invalidf("chat: message %d (%s), byte %d: %w", i, msg.Role, at+1, tokenizer.ErrInvalidUTF8)
		}
	}
	opts := chat.RenderOptions{AddGenerationPrompt: true, Tools: tools}
	if thinking != nil {
		opts.Vars = map[string]any{"enable_thinking": *thinking}
	}
	text, err := m.Template.RenderWith(ctx, msgs, opts) // template code from the model folder: stoppable, budgeted
	if err != nil {
		return nil, inputErr(err)
	}
	// The template writes the special tokens (BOS, turn markers) itself:
	// encoding them again would double the BOS (transformers'
	// apply_chat_template tokenizes with add_special_tokens=False too).
	enc, err := m.Tokenizer.Encode(text, false)
	if err != nil {
		return nil, err
	}
	return enc.IDs, nil
}

// generate runs the model on prompt until one of stops; opt is valid (the
// callers Validate it before any work).
func (m *Model) generate(ctx context.Context, prompt []int, opt GenerateOptions, stops []int) (Reply, error) {
	if opt.MaxNewTokens == 0 {
		opt.MaxNewTokens = 64
	}
	r := Reply{PromptTokens: len(prompt)}
	if len(prompt) == 0 {
		return r, invalid(errors.New("generate: the prompt is empty"))
	}
	if m.Net.Room(len(prompt)) == 0 {
		return r, fmt.Errorf("generate: %w: the prompt has %d tokens and the model's context holds %d; shorten it", ErrContextFull, len(prompt), m.Net.Config.MaxPositions)
	}
	dec := m.Tokenizer.NewStreamDecoder(true)
	var sb strings.Builder
	emit := func(s string) error {
		if s == "" {
			return nil
		}
		sb.WriteString(s)
		if opt.OnText != nil {
			return opt.OnText(s)
		}
		return nil
	}
	match := stopMatcher{stops: opt.StopStrings}
	special := m.specialStops(opt.StopStrings)
	// text passes a piece of the reply's text through the stop strings;
	// r.Stop is set when one is found.
	text := func(s string) error {
		if len(match.stops) > 0 && r.Stop == "" {
			s, r.Stop = match.add(s)
		}
		return emit(s)
	}
	var stopErr error
	gen := nn.GenerateOptions{
		MaxNewTokens: opt.MaxNewTokens, Temperature: opt.Temperature, TopK: opt.TopK, TopP: opt.TopP, MinP: opt.MinP,
		RepetitionPenalty: opt.RepetitionPenalty, Seed: opt.Seed,
		StopTokens: stops,
		// Asked between the model's layers: a cancel during a long
		// prompt's prefill stops it there, not once it is done.
		Interrupt: ctx.Err,
		OnToken: func(id int) bool {
			if stopErr = ctx.Err(); stopErr != nil {
				return false
			}
			if s, ok := special[id]; ok {
				r.Stop = s // a special token: no text
				return false
			}
			if slices.Contains(stops, id) {
				return true // not part of the text
			}
			var s string
			if s, stopErr = dec.Next(id); stopErr == nil {
				stopErr = text(s)
			}
			return stopErr == nil && r.Stop == ""
		},
	}
	out, err := m.Net.Generate(prompt, gen)
	if err == nil {
		err = stopErr
	}
	if err == nil && r.Stop == "" {
		var s string
		if s, err = dec.Flush(); err == nil {
			err = text(s)
		}
		if err == nil && r.Stop == "" {
			err = emit(match.held) // began a stop string, and the reply ended
		}
	}
	r.Text, r.Tokens = sb.String(), len(out)
	switch {
	case err != nil:
		// Fewer tokens than MaxNewTokens here say nothing about the
		// context: the error cut generation short (or it never began).
		r.Stop = ""
	case r.Stop != "":
		r.Stopped = StopString
	case len(out) > 0 && slices.Contains(stops, out[len(out)-1]):
		r.Stopped = StopToken
	case len(out) < opt.MaxNewTokens:
		r.Stopped = StopContext
	default:
		r.Stopped = StopLength
	}
	return r, err
}

// specialStops maps the id of each of stops that is one special token of
// the vocabulary (the reply's text leaves it out, so no text can match it)
// to that stop string.
func (m *Model) specialStops(stops []string) map[int]string {
	var ids map[int]string
	for _, s := range stops {
		id, ok := m.Tokenizer.TokenToID(s)
		if !ok {
			continue
		}
		if t, err := m.Tokenizer.Decode([]int{id}, true); err != nil || t != "" {
			continue // text like any other
		}
		if ids == nil {
			ids = map[int]string{}
		}
		if _, dup := ids[id]; !dup {
			ids[id] = s
		}
	}
	return ids
}

// stopMatcher finds the first stop string in a text given piece by piece,
// holding back the end of the text that may begin one.
type stopMatcher struct {
	stops []string
	held  string // the text's end that begins a stop string: not passed on yet
}

// add takes the next piece of the text and returns what of the text can
// be passed on. When the text now holds a stop string, found is the one
// that begins first (of two at one place, the one listed first) and out
// ends before it; nothing more should be added then.
//
// A stop string found here lies within held and piece: one that began
// earlier would have made a longer held (held is the longest end of the
// text so far that begins a stop string).
func (sm *stopMatcher) add(piece string) (out, found string) {
	buf := sm.held + piece
	at := -1
	for _, s := range sm.stops {
		if i := strings.Index(buf, s); i >= 0 && (at < 0 || i < at) {
			at, found = i, s
		}
	}
	if at >= 0 {
		sm.held = ""
		return buf[:at], found
	}
	keep := 0 // the longest end of buf that is a proper prefix of a stop string
	for _, s := range sm.stops {
		for k := min(len(s)-1, len(buf)); k > keep; k-- {
			if strings.HasSuffix(buf, s[:k]) {
				keep = k
				break
			}
		}
	}
	sm.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], ""
}

// ThinkingOpen reports whether text, a reply, ends inside a <think> block
// it opened: the reply stopped while the model was still thinking, before
// any answer.
func ThinkingOpen(text string) bool {
	i := strings.LastIndex(text, "<think>")
	return i >= 0 && !strings.Contains(text[i:], "</think>")
}

// invalidUTF8 is the offset of the first byte of s that is not part of
// valid UTF-8, or -1 when s is valid.
func invalidUTF8(s string) int {
	if utf8.ValidString(s) {
		return -1
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1 // not reached: ValidString said otherwise
}
