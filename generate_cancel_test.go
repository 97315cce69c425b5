package ftune

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
)

// TestGenerateCancelStopsThePrefill: a ctx cancelled before the call runs
// no forward pass at all, and one cancelled during the prompt's prefill
// stops it there, before a token. Generate used to run the whole prefill
// either way (a 991-token prompt: 200-500 ms on tiny-base for nothing),
// and noticed the cancel only once the first token was out.
func TestGenerateCancelStopsThePrefill(t *testing.T) {
	m := tinyModel(t)
	passes := 0
	var onPass func()
	m.Net.EmbeddingHook = func(_ *autograd.Tape, h *autograd.Var) *autograd.Var {
		passes++
		if onPass != nil {
			onPass()
		}
		return h
	}
	prompt := strings.Repeat("The capital of France is Paris. ", 20)
	msgs := []Message{{Role: "user", Content: prompt}}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range map[string]func(context.Context) (Reply, error){
		"Generate": func(ctx context.Context) (Reply, error) { return m.Generate(ctx, prompt, GenerateOptions{}) },
		"Chat":     func(ctx context.Context) (Reply, error) { return m.Chat(ctx, msgs, GenerateOptions{}) },
		"Send": func(ctx context.Context) (Reply, error) {
			return m.NewConversation("").Send(ctx, prompt, GenerateOptions{})
		},
	} {
		passes, onPass = 0, nil
		if r, err := call(done); !errors.Is(err, context.Canceled) || passes != 0 || r.Tokens != 0 {
			t.Errorf("%s, cancelled before: %d forward passes, %d tokens, err %v; want none and context.Canceled", name, passes, r.Tokens, err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		passes, onPass = 0, cancel // cancelled once the prefill has begun
		r, err := call(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) || passes != 1 || r.Tokens != 0 {
			t.Errorf("%s, cancelled during the prefill: %d forward passes, %d tokens, err %v; want 1 pass stopped before a token, context.Canceled", name, passes, r.Tokens, err)
		}
	}
}
