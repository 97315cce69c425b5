package ftune

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

// TestErrInvalidInput: the errors of calls refused for what their caller
// passed match one sentinel, ErrInvalidInput, so that a service can answer
// them as bad requests; an unknown role matches ErrUnknownRole whether
// Chat (data/chat) or FineTune (data/format) refuses it. None of them did
// before: each was a plain error with its own wording.
func TestErrInvalidInput(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	dir := t.TempDir()
	wizard := []Message{{Role: "wizard", Content: "hi"}}
	noExamples := func() error { _, err := FineTune(ctx, nil, nil, nil); return err }
	for _, c := range []struct {
		name string
		err  func() error
		role bool // an unknown role
		also error
	}{
		{"options", func() error { _, err := m.Generate(ctx, "x", GenerateOptions{TopK: 3}); return err }, false, nil},
		{"empty prompt", func() error { _, err := m.generate(ctx, nil, GenerateOptions{}, nil); return err }, false, nil},
		{"prompt not UTF-8", func() error { _, err := m.Generate(ctx, "a\xff", GenerateOptions{}); return err }, false, nil},
		{"chat role", func() error { _, err := m.Chat(ctx, wizard, GenerateOptions{}); return err }, true, nil},
		{"send not UTF-8", func() error { _, err := m.NewConversation("").Send(ctx, "a\xff", GenerateOptions{}); return err }, false, nil},
		{"export path", func() error { _, err := m.Export(ctx, "", ExportOptions{Format: FormatGGUF}); return err }, false, nil},
		{"export format", func() error { _, err := m.Export(ctx, dir, ExportOptions{Format: "zip"}); return err }, false, nil},
		{"export shards", func() error {
			_, err := m.Export(ctx, filepath.Join(dir, "m.gguf"), ExportOptions{Format: FormatGGUF, MaxShardBytes: 1 << 20})
			return err
		}, false, nil},
		{"export quant", func() error {
			_, err := m.Export(ctx, filepath.Join(dir, "m.gguf"), ExportOptions{Format: FormatGGUF, Quant: "q9_z"})
			return err
		}, false, nil},
		{"export output type", func() error {
			_, err := m.Export(ctx, filepath.Join(dir, "m.gguf"), ExportOptions{Format: FormatGGUF, OutputType: "q9_z"})
			return err
		}, false, nil},
		{"no examples", noExamples, false, ErrNoExamples},
		{"example without messages", func() error { _, err := FineTune(ctx, []Example{{}}, nil, nil); return err }, false, nil},
		{"example role", func() error { _, err := FineTune(ctx, []Example{{Messages: wizard}}, nil, nil); return err }, true, nil},
		{"preference role", func() error {
			_, err := FineTunePreferences(ctx, []Preference{{Prompt: wizard, Chosen: wizard, Rejected: wizard}}, nil, nil)
			return err
		}, true, nil},
		{"feedback role", func() error {
			_, err := FineTuneFeedback(ctx, []Feedback{{Prompt: wizard, Completion: wizard}}, nil, nil)
			return err
		}, true, nil},
		{"feedback without a completion", func() error {
			_, err := FineTuneFeedback(ctx, []Feedback{{Prompt: wizard}}, nil, nil)
			return err
		}, false, nil},
		{"no feedback", func() error { _, err := FineTuneFeedback(ctx, nil, nil, nil); return err }, false, ErrNoExamples},
	} {
		err := c.err()
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want an error matching ErrInvalidInput", c.name, err)
			continue
		}
		if c.also != nil && !errors.Is(err, c.also) {
			t.Errorf("%s: %v, want it to match %v too", c.name, err, c.also)
		}
		role := errors.Is(err, ErrUnknownRole)
		if role != c.role {
			t.Errorf("%s: %v matches ErrUnknownRole: %v, want %v", c.name, err, role, c.role)
		}
		if role && (!errors.Is(err, chat.ErrUnknownRole) || !errors.Is(err, format.ErrUnknownRole) && strings.Contains(c.name, "example")) {
			t.Errorf("%s: %v, want it to match its package's unknown-role error", c.name, err)
		}
	}
	// A prompt too long for the model is no mistake of the request's
	// form: it has its own sentinel, as an adapter a format needs does.
	long := strings.Repeat("The capital of France is Paris. ", 200)
	if _, err := m.Generate(ctx, long, GenerateOptions{}); !errors.Is(err, ErrContextFull) || errors.Is(err, ErrInvalidInput) {
		t.Errorf("a prompt longer than the context: %v, want ErrContextFull alone", err)
	}
	if _, err := m.Export(ctx, dir, ExportOptions{Format: FormatPEFT}); !errors.Is(err, ErrNoAdapter) || errors.Is(err, ErrInvalidInput) {
		t.Errorf("peft without an adapter: %v, want ErrNoAdapter alone", err)
	}
}

// TestChatMessageNumbering: the first message is message 0 in Chat's
// errors, whether its role is unknown (data/chat numbers from 0) or its
// text is not UTF-8 (which said message 1).
func TestChatMessageNumbering(t *testing.T) {
	m := tinyModel(t)
	for _, msg := range []Message{{Role: "wizard", Content: "hi"}, {Role: "user", Content: "a\xff"}} {
		_, err := m.Chat(context.Background(), []Message{msg}, GenerateOptions{})
		if err == nil || !strings.Contains(err.Error(), "message 0") {
			t.Errorf("%+v: %v, want it named message 0", msg, err)
		}
	}
}
