package prep

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

// qwen3Renderer renders with the Qwen3 template bundled for data/chat's
// tests, passing vars (enable_thinking) as the run does.
func qwen3Renderer(t *testing.T, vars map[string]any) ContextRenderer {
	t.Helper()
	tpl, err := chat.Load(filepath.Join("..", "chat", "testdata", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	return ContextRenderFunc(func(ctx context.Context, ms []format.Message, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
		}
		return tpl.RenderWith(ctx, cm, chat.RenderOptions{AddGenerationPrompt: gen, Vars: vars})
	})
}

func assistant(content, reasoning string) format.Message {
	return format.Message{Role: format.RoleAssistant, Content: content, ReasoningContent: reasoning}
}

func user(content string) format.Message {
	return format.Message{Role: format.RoleUser, Content: content}
}

// TestThinkingHistoryLabels: Qwen3's template drops the thinking of the
// answers before the last user message. Such a conversation was refused
// (ErrNotPrefixStable); it is now trained as rendered: the earlier
// answers without their thinking, the last one with it, each labelled
// exactly from the end of its header to its end of turn, also where the
// answers repeat the user's words, and whether the thinking comes in the
// content's <think> block or in reasoning_content.
func TestThinkingHistoryLabels(t *testing.T) {
	const eot = "<|im_end|>\n"
	tests := []struct {
		name string
		msgs []format.Message
		vars map[string]any
		want string // learnt runs, "|" between them
	}{
		{
			name: "think blocks in contents",
			msgs: []format.Message{user("2+2?"), assistant("<think>\nAdd them.\n</think>\n\n4", ""), user("3+3?"), assistant("<think>\nAgain.\n</think>\n\n6", "")},
			want: "4" + eot + "|<think>\nAgain.\n</think>\n\n6" + eot,
		},
		{
			name: "reasoning_content",
			msgs: []format.Message{user("2+2?"), assistant("4", "Two plus two."), user("And 3+3?"), assistant("6", "Three plus three.")},
			want: "4" + eot + "|<think>\nThree plus three.\n</think>\n\n6" + eot,
		},
		{
			name: "answers repeat the user's words",
			msgs: []format.Message{user("4"), assistant("<think>\n4\n</think>\n\n4", ""), user("4 4"), assistant("4", "4"), user("4"), assistant("<think>\n4\n</think>\n\n4 4", "")},
			want: "4" + eot + "|4" + eot + "|<think>\n4\n</think>\n\n4 4" + eot,
		},
		{
			name: "three turns, the middle one without thinking",
			msgs: []format.Message{{Role: "system", Content: "Be brief."}, user("a?"), assistant("<think>\nt1\n</think>\n\nA", ""), user("b?"), assistant("B", ""), user("c?"), assistant("C", "t3")},
			want: "A" + eot + "|B" + eot + "|<think>\nt3\n</think>\n\nC" + eot,
		},
		{
			// The generation prompt then holds an empty <think> block, which
			// is not learnt (the model is given it); earlier turns open with
			// the bare header the template writes there.
			name: "enable_thinking false",
			vars: map[string]any{"enable_thinking": false},
			msgs: []format.Message{user("2+2?"), assistant("<think>\nAdd them.\n</think>\n\n4", ""), user("3+3?"), assistant("6", "")},
			want: "4" + eot + "|6" + eot,
		},
		{
			name: "enable_thinking true",
			vars: map[string]any{"enable_thinking": true},
			msgs: []format.Message{user("2+2?"), assistant("4", "x"), user("3+3?"), assistant("6", "")},
			want: "4" + eot + "|<think>\n\n</think>\n\n6" + eot,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := qwen3Renderer(t, tc.vars)
			for _, enc := range []Encoder{byteEncoder{}, byteOffsetEncoder{}} {
				p := &Preprocessor{Enc: enc, Tmpl: r, EOS: fakeImEnd}
				got, o, err := p.Tokenize(format.Example{Messages: tc.msgs, Source: "t.jsonl:1"})
				if err != nil {
					t.Fatal(err)
				}
				if o != Kept {
					t.Fatalf("outcome %v", o)
				}
				full, err := r.Render(tc.msgs, false)
				if err != nil {
					t.Fatal(err)
				}
				if d := fakeDecode(got.IDs); d != full {
					t.Errorf("%T: ids are not the rendering's:\n got %q\nwant %q", enc, d, full)
				}
				if runs := learntRuns(got); runs != tc.want {
					t.Errorf("%T: learnt %q\nwant    %q\nof %q", enc, runs, tc.want, full)
				}
			}
		})
	}
}

// TestThinkingHistoryRefusedWhenAmbiguous: an earlier answer whose
// thinking the template drops and whose text holds the assistant header
// itself cannot be placed for sure (the header could be found inside it):
// prep refuses it with the reason, naming the message, rather than guess.
func TestThinkingHistoryRefusedWhenAmbiguous(t *testing.T) {
	p := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: qwen3Renderer(t, nil), EOS: fakeImEnd}
	ms := []format.Message{user("Quote the header."), assistant("<think>\nok\n</think>\n\nIt is <|im_start|>assistant\n here.", ""), user("Thanks."), assistant("Welcome.", "")}
	_, _, err := p.Tokenize(format.Example{Messages: ms, Source: "t.jsonl:4"})
	if !errors.Is(err, ErrNotPrefixStable) || !strings.Contains(err.Error(), "t.jsonl:4") || !strings.Contains(err.Error(), "message 1") || !strings.Contains(err.Error(), "train_on_inputs") {
		t.Fatalf("want a refusal naming the record and message 1, got %v", err)
	}
	// The same answer in the last turn keeps its thinking, so its start
	// is marked and it is labelled.
	got, _, err := p.Tokenize(format.Example{Messages: ms[:2], Source: "t.jsonl:5"})
	if err != nil {
		t.Fatal(err)
	}
	if runs, want := learntRuns(got), "<think>\nok\n</think>\n\nIt is <|im_start|>assistant\n here.<|im_end|>\n"; runs != want {
		t.Errorf("learnt %q, want %q", runs, want)
	}
}
