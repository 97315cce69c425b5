package recipe

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// qwen3Model is a model folder with tiny-base's tokenizer and Qwen3's chat
// template (the one data/chat's tests bundle).
func qwen3Model(t *testing.T) string {
	t.Helper()
	tpl, err := chat.Load(filepath.Join("..", "data", "chat", "testdata", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	return textModel(t, tpl.Source())
}

// TestReasoningReachesTheTemplate: a message's reasoning_content was
// dropped on the way to the template (renderContext copied role and
// content only), so Qwen3's <think> block of the last answer was empty.
func TestReasoningReachesTheTemplate(t *testing.T) {
	p, err := LoadTextFor(qwen3Model(t), "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []format.Message{{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4", ReasoningContent: "Two and two."}}
	got, err := p.render(msgs, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>assistant\n<think>\nTwo and two.\n</think>\n\n4<|im_end|>\n"; !strings.HasSuffix(got, want) {
		t.Errorf("rendering %q does not end with %q", got, want)
	}
}

// TestEnableThinking: the setting reaches every rendering (the generation
// prompt of Qwen3's template holds an empty <think> block when it is
// false), changes the token cache's template key, and is refused for a
// template that does not read it.
func TestEnableThinking(t *testing.T) {
	dir := qwen3Model(t)
	p, err := LoadTextFor(dir, "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	prompt := []format.Message{{Role: "user", Content: "Hi"}}
	hashes := map[prep.Hash]string{p.TemplateHash: "unset"}
	for _, on := range []bool{false, true} {
		q := p
		if err := q.SetThinking(&on); err != nil {
			t.Fatal(err)
		}
		got, err := q.renderContext(context.Background(), prompt, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if empty := strings.HasSuffix(got, "<|im_start|>assistant\n<think>\n\n</think>\n\n"); empty == on {
			t.Errorf("enable_thinking %v: generation prompt %q", on, got)
		}
		if prev, ok := hashes[q.TemplateHash]; ok {
			t.Errorf("enable_thinking %v: the template hash equals that of %s (a token cache would be reused)", on, prev)
		}
		hashes[q.TemplateHash] = "set"
	}
	// A subject template that does not read it is refused too.
	off := false
	if err := p.SetThinking(&off); err != nil {
		t.Fatal(err)
	}
	if err := p.UseTemplate("chatml"); err == nil || !strings.Contains(err.Error(), "does not read it") {
		t.Errorf("chatml with enable_thinking: got %v", err)
	}
	c, err := LoadTextFor(dir, "chatml", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetThinking(&off); err == nil || !strings.Contains(err.Error(), "builtin:chatml") {
		t.Errorf("got %v, want a refusal naming the template", err)
	}
	if err := c.SetThinking(nil); err != nil {
		t.Errorf("unset: %v", err)
	}
}

// TestThinkingConversationTrains: a Qwen3 conversation with thinking in an
// earlier turn, as a dataset gives it, is tokenised by the run's
// preprocessor with the earlier answer learnt without its thinking and the
// last with it (it was refused).
func TestThinkingConversationTrains(t *testing.T) {
	p, err := LoadTextFor(qwen3Model(t), "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	ex := format.Example{Source: "d.jsonl:1", Messages: []format.Message{
		{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4", ReasoningContent: "Add them."},
		{Role: "user", Content: "3+3?"}, {Role: "assistant", Content: "<think>\nAgain.\n</think>\n\n6"},
	}}
	tk, _, err := p.Preprocessor(0).Tokenize(ex)
	if err != nil {
		t.Fatal(err)
	}
	var learnt []int
	for j, l := range tk.Labels {
		if l != prep.IgnoreIndex {
			learnt = append(learnt, int(tk.IDs[j]))
		}
	}
	got, err := p.tok.Decode(learnt, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "4<|im_end|>\n<think>\nAgain.\n</think>\n\n6<|im_end|>\n"; !strings.HasPrefix(got, want) || strings.Contains(got, "Add them") {
		t.Errorf("learnt %q, want %q (+ EOS)", got, want)
	}
}
