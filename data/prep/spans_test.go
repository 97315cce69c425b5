package prep

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

func templateRenderer(t *chat.Template) Renderer {
	return RenderFunc(func(ms []format.Message, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
		}
		return t.Render(cm, gen)
	})
}

// spanTemplates are the templates the linear span search is checked
// against: every built-in, the bundled tiny-base and Qwen3 ones and the
// fake ChatML variants.
func spanTemplates(t *testing.T) map[string]Renderer {
	out := map[string]Renderer{"fake": chatML{}, "fake-eos-end": chatML{end: "<|endoftext|>"}, "fake-think-last": chatML{thinkLast: true}}
	for _, name := range chat.BuiltinNames() {
		tpl, err := chat.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = templateRenderer(tpl)
	}
	for _, dir := range []string{"tiny-base", "qwen3"} {
		tpl, err := chat.Load(filepath.Join("..", "chat", "testdata", dir))
		if err != nil {
			t.Fatal(err)
		}
		out[dir] = templateRenderer(tpl)
	}
	return out
}

// TestMarkedSpansEqualPrefixSpans: the linear search gives the spans the
// per-turn renderings give, on ordinary conversations, for every template
// it accepts (and at least for the ChatML and Llama families).
func TestMarkedSpansEqualPrefixSpans(t *testing.T) {
	convs := [][]format.Message{
		msgs("user", "Capital of France?", "assistant", "Paris"),
		msgs("system", "Be brief.", "user", "A?", "assistant", "a", "user", "B?", "assistant", "b"),
		msgs("user", "A?", "assistant", "a", "user", "more?"),
		msgs("system", "s", "user", "A?", "assistant", "", "user", "B?", "assistant", "b b\n"),
		msgs("user", "q1", "assistant", "a1", "user", "q2", "assistant", "a2", "user", "q3", "assistant", "a3"),
		msgs("assistant", "Hi! Ask me.", "user", "Capital of Peru?", "assistant", "Lima"),
	}
	fast := map[string]bool{}
	for name, r := range spanTemplates(t) {
		p := &Preprocessor{Enc: byteEncoder{}, Tmpl: r}
		for ci, conv := range convs {
			full, err := r.Render(conv, false)
			if err != nil {
				continue // e.g. a template that wants a system message first
			}
			slow, slowErr := p.prefixSpans(conv, "", full)
			got, ok, err := p.markedSpans(conv, "", full)
			if err != nil {
				t.Fatalf("%s conv %d: %v", name, ci, err)
			}
			if !ok {
				continue
			}
			fast[name] = true
			if slowErr != nil || !slices.Equal(got, slow) {
				t.Errorf("%s conv %d: linear spans %v, per-turn spans %v (%v)\n%q", name, ci, got, slow, slowErr, full)
			}
		}
	}
	for _, name := range []string{"fake", "fake-think-last", "chatml", "llama3", "tiny-base", "qwen3"} {
		if !fast[name] {
			t.Errorf("%s: never took the linear path", name)
		}
	}
}

func longConversation(n int) []format.Message {
	var ms []format.Message
	for i := 0; i < n; i += 2 {
		ms = append(ms, format.Message{Role: "user", Content: fmt.Sprintf("question %d?", i)},
			format.Message{Role: "assistant", Content: fmt.Sprintf("answer %d.", i)})
	}
	return ms
}

// TestManyMessagesLinear: one record of 4,000 messages took 47 s when each
// assistant turn re-rendered the conversation before it; it must take well
// under a second, with every answer learnt.
func TestManyMessagesLinear(t *testing.T) {
	tpl, err := chat.Load(filepath.Join("..", "chat", "testdata", "tiny-base"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: templateRenderer(tpl), EOS: fakeEOT}
	ex := format.Example{Messages: longConversation(4000), Source: "long.jsonl:1"}
	start := time.Now()
	tk, _, err := p.Tokenize(ex)
	d := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4,000 messages: %s", d)
	if d > 2*time.Second { // well under a second on an idle core; slack for a loaded machine
		t.Errorf("4,000 messages took %s", d)
	}
	learnt := learntRuns(tk)
	if n := strings.Count(learnt, "answer "); n != 2000 || strings.Contains(learnt, "question") ||
		!strings.HasPrefix(learnt, "answer 0.<|im_end|>\n|answer 2.") || !strings.HasSuffix(learnt, "|answer 3998.<|im_end|>\n<|endoftext|>") {
		t.Errorf("%d answers learnt: %.80q … %.80q", n, learnt, learnt[max(0, len(learnt)-80):])
	}
}

// TestMessagesPerRecordCap: a record over MaxMessages is an error naming
// it and the limit, before anything is rendered.
func TestMessagesPerRecordCap(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, Opts: Options{MaxMessages: 100}}
	_, _, err := p.Tokenize(format.Example{Messages: longConversation(102), Source: "big.jsonl:7"})
	if err == nil || !strings.Contains(err.Error(), "big.jsonl:7") || !strings.Contains(err.Error(), "limit of 100") {
		t.Errorf("got %v", err)
	}
	p.Opts.MaxMessages = 0
	_, _, err = p.Tokenize(format.Example{Messages: longConversation(DefaultMaxMessages + 2), Source: "big.jsonl:8"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(DefaultMaxMessages)) {
		t.Errorf("default limit: %v", err)
	}
}

// TestAssistantFirstHeaderIsContext: in a conversation the assistant
// opens (LLaMA-Factory's ShareGPT allows one), the first answer's span
// began at the start of the rendering, so its role header (and whatever
// the template writes before it: a default system prompt, BOS) was learnt,
// while every other turn keeps its header as context. Both span searches
// now start it after the header, for every template that renders such a
// conversation.
func TestAssistantFirstHeaderIsContext(t *testing.T) {
	conv := msgs("assistant", "Hi! Ask me.", "user", "Capital of Peru?", "assistant", "Lima")
	for name, r := range spanTemplates(t) {
		full, err := r.Render(conv, false)
		if err != nil {
			continue // a template that wants a user turn first
		}
		p := &Preprocessor{Enc: byteEncoder{}, Tmpl: r}
		marked, ok, err := p.markedSpans(conv, "", full)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		prefix, err := p.prefixSpans(conv, "", full)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for path, spans := range map[string][]span{"marked": marked, "prefix": prefix} {
			if path == "marked" && !ok {
				continue
			}
			if len(spans) != 2 {
				t.Fatalf("%s %s: spans %v", name, path, spans)
			}
			if got := full[spans[0].start:spans[0].end]; !strings.HasPrefix(got, "Hi! Ask me.") {
				t.Errorf("%s %s: first answer learnt as %q, want its content without the header before it\n%q", name, path, got, full)
			}
		}
	}
}
