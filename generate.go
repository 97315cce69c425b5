package ftune

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/nn"
)

// ErrContextFull is wrapped when a prompt leaves no room for a reply in
// the model's context (max_position_embeddings).
var ErrContextFull = nn.ErrContextFull

// GenerateOptions control one reply. The zero value is greedy decoding of
// up to 64 tokens.
type GenerateOptions struct {
	MaxNewTokens int     // 0 = 64
	Temperature  float64 // 0 = greedy
	TopK         int     // 0 = all tokens
	TopP         float64 // 0 = off
	Seed         uint64
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
}

// Why a reply ended.
const (
	StopToken   = "stop"    // the model produced a stop token
	StopLength  = "length"  // MaxNewTokens reached
	StopContext = "context" // the model's context is full
)

// Reply is one generated answer.
type Reply struct {
	Text         string
	PromptTokens int
	Tokens       int // new tokens, the stop token included
	// Stopped is why generation ended: StopToken, StopLength or
	// StopContext; "" when it ended on an error (a cancelled ctx, an
	// error from OnText, invalid options), which is no stop.
	Stopped string
	// DroppedTurns counts the oldest messages a Conversation removed so
	// that the prompt fits the context (0 for Generate and Chat).
	DroppedTurns int
}

// Generate continues prompt as plain text (no chat template).
func (m *Model) Generate(ctx context.Context, prompt string, opt GenerateOptions) (Reply, error) {
	enc, err := m.Tokenizer.Encode(prompt, false)
	if err != nil {
		return Reply{}, err
	}
	return m.generate(ctx, enc.IDs, opt)
}

// Chat renders the conversation with the model's chat template and
// generates the assistant's next message. A conversation longer than the
// context is an error wrapping ErrContextFull (a Conversation drops old
// turns instead).
func (m *Model) Chat(ctx context.Context, msgs []Message, opt GenerateOptions) (Reply, error) {
	ids, err := m.chatPrompt(ctx, msgs, opt.Thinking)
	if err != nil {
		return Reply{}, err
	}
	return m.generate(ctx, ids, opt)
}

// ErrNoThinking is wrapped when GenerateOptions.Thinking is set for a chat
// template that does not read enable_thinking.
var ErrNoThinking = errors.New("the chat template does not read enable_thinking")

// chatPrompt renders msgs with the generation prompt. An earlier reply's
// <think> block stays in its message: thinking templates (Qwen3's) drop
// it from history themselves, as they were trained.
func (m *Model) chatPrompt(ctx context.Context, msgs []Message, thinking *bool) ([]int, error) {
	opts := chat.RenderOptions{AddGenerationPrompt: true}
	if thinking != nil {
		if !strings.Contains(m.Template.Source(), "enable_thinking") {
			return nil, fmt.Errorf("chat: thinking %v: %w (%s; only thinking models' templates, such as Qwen3's, do)", *thinking, ErrNoThinking, m.Template.Name())
		}
		opts.Vars = map[string]any{"enable_thinking": *thinking}
	}
	text, err := m.Template.RenderWith(ctx, msgs, opts) // template code from the model folder: stoppable, budgeted
	if err != nil {
		return nil, err
	}
	// The template writes the special tokens (BOS, turn markers) itself.
	enc, err := m.Tokenizer.Encode(text, false)
	if err != nil {
		return nil, err
	}
	return enc.IDs, nil
}

func (m *Model) generate(ctx context.Context, prompt []int, opt GenerateOptions) (Reply, error) {
	if opt.MaxNewTokens < 0 {
		return Reply{}, fmt.Errorf("generate: MaxNewTokens %d: want > 0 (0: the default, 64)", opt.MaxNewTokens)
	}
	if opt.MaxNewTokens == 0 {
		opt.MaxNewTokens = 64
	}
	r := Reply{PromptTokens: len(prompt)}
	if len(prompt) == 0 {
		return r, errors.New("generate: the prompt is empty")
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
	var stopErr error
	gen := nn.GenerateOptions{
		MaxNewTokens: opt.MaxNewTokens, Temperature: opt.Temperature, TopK: opt.TopK, TopP: opt.TopP, Seed: opt.Seed,
		StopTokens: m.stops,
		OnToken: func(id int) bool {
			if stopErr = ctx.Err(); stopErr != nil {
				return false
			}
			if slices.Contains(m.stops, id) {
				return true // not part of the text
			}
			var s string
			if s, stopErr = dec.Next(id); stopErr == nil {
				stopErr = emit(s)
			}
			return stopErr == nil
		},
	}
	out, err := m.Net.Generate(prompt, gen)
	if err == nil {
		err = stopErr
	}
	if err == nil {
		var s string
		if s, err = dec.Flush(); err == nil {
			err = emit(s)
		}
	}
	r.Text, r.Tokens = sb.String(), len(out)
	switch {
	case err != nil:
		// Fewer tokens than MaxNewTokens here say nothing about the
		// context: the error cut generation short (or it never began).
	case len(out) > 0 && slices.Contains(m.stops, out[len(out)-1]):
		r.Stopped = StopToken
	case len(out) < opt.MaxNewTokens:
		r.Stopped = StopContext
	default:
		r.Stopped = StopLength
	}
	return r, err
}

// ThinkingOpen reports whether text, a reply, ends inside a <think> block
// it opened: the reply stopped while the model was still thinking, before
// any answer.
func ThinkingOpen(text string) bool {
	i := strings.LastIndex(text, "<think>")
	return i >= 0 && !strings.Contains(text[i:], "</think>")
}
