package ftune

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
)

// TestChatThinkingOption: GenerateOptions.Thinking reaches the template as
// enable_thinking (Qwen3's generation prompt then holds an empty <think>
// block), is refused for a template that does not read it, and an earlier
// reply's thinking is not fed back (the template drops it from history).
func TestChatThinkingOption(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	off := false
	user := []Message{{Role: "user", Content: "Capital of Peru?"}}
	if _, err := m.Chat(ctx, user, GenerateOptions{MaxNewTokens: 1, Thinking: &off}); !errors.Is(err, ErrNoThinking) {
		t.Fatalf("tiny-base's template with thinking off: got %v, want ErrNoThinking", err)
	}
	qwen3, err := chat.Load(filepath.Join("data", "chat", "testdata", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	m.Template = qwen3
	prompt := func(msgs []Message, thinking *bool) string {
		t.Helper()
		ids, err := m.chatPrompt(ctx, msgs, GenerateOptions{Thinking: thinking})
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.Tokenizer.Decode(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const empty = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
	if p := prompt(user, &off); !strings.HasSuffix(p, empty) {
		t.Errorf("thinking off: prompt %q does not end with an empty think block", p)
	}
	if p := prompt(user, nil); strings.HasSuffix(p, empty) || !strings.HasSuffix(p, "<|im_start|>assistant\n") {
		t.Errorf("template default: prompt %q", p)
	}
	on := true
	r, err := m.Chat(ctx, user, GenerateOptions{MaxNewTokens: 1, Thinking: &on})
	if err != nil || r.Tokens == 0 {
		t.Fatalf("thinking on: %+v, %v", r, err)
	}
	history := append(append([]Message{}, user...), Message{Role: "assistant", Content: "<think>\nSecret reasoning.\n</think>\n\nLima."}, Message{Role: "user", Content: "And Chile?"})
	if p := prompt(history, nil); strings.Contains(p, "Secret") || !strings.Contains(p, "Lima.") {
		t.Errorf("history prompt %q: want the earlier answer without its thinking", p)
	}
}

func TestThinkingOpen(t *testing.T) {
	for text, want := range map[string]bool{
		"<think>\nStill going":              true,
		"<think>\nDone.\n</think>\n\nLima.": false,
		"Lima.":                             false,
		"<think>a</think> b <think>c":       true,
	} {
		if got := ThinkingOpen(text); got != want {
			t.Errorf("ThinkingOpen(%q) = %v", text, got)
		}
	}
}
