package ftune

import (
	"context"
	"errors"
	"testing"
)

// TestGenerateStoppedOnErrors: a reply cut short by an error used to say
// Stopped "context" (the model's context is full), whatever the error.
// It is now empty on every error path, and still names the real stop on
// success.
func TestGenerateStoppedOnErrors(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	stop := errors.New("enough")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		opt  GenerateOptions
	}{
		{"invalid top_p", ctx, GenerateOptions{TopP: 2, Temperature: 1}},
		{"negative temperature", ctx, GenerateOptions{Temperature: -1}},
		{"OnText error", ctx, GenerateOptions{MaxNewTokens: 8, OnText: func(string) error { return stop }}},
		{"cancelled", cancelled, GenerateOptions{MaxNewTokens: 8}},
	} {
		r, err := m.Generate(c.ctx, "The capital of France is", c.opt)
		if err == nil {
			t.Fatalf("%s: no error (reply %+v)", c.name, r)
		}
		if r.Stopped != "" {
			t.Errorf("%s: Stopped %q after the error %v, want empty", c.name, r.Stopped, err)
		}
	}
	r, err := m.Generate(ctx, "The capital of France is", GenerateOptions{MaxNewTokens: 3})
	if err != nil || r.Stopped != StopLength {
		t.Fatalf("3 tokens: %+v, %v, want stopped by length", r, err)
	}
}
