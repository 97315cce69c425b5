package prep

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// learntRuns decodes the learnt tokens, runs joined by "|".
func learntRuns(t Tokenized) string {
	var runs []string
	var cur []int32
	for j, l := range t.Labels {
		if l != IgnoreIndex {
			if l != t.IDs[j] {
				return "label differs from its token"
			}
			cur = append(cur, l)
		} else if cur != nil {
			runs, cur = append(runs, fakeDecode(cur)), nil
		}
	}
	if cur != nil {
		runs = append(runs, fakeDecode(cur))
	}
	return strings.Join(runs, "|")
}

func TestTokenizeChat(t *testing.T) {
	tests := []struct {
		name   string
		msgs   []format.Message
		tmpl   chatML
		opts   Options
		full   string // decoded ids
		learnt string
	}{
		{
			name:   "single turn",
			msgs:   msgs("user", "Capital of France?", "assistant", "Paris"),
			full:   "<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis<|im_end|>\n<|endoftext|>",
			learnt: "Paris<|im_end|>\n<|endoftext|>",
		},
		{
			name:   "system and two assistant turns",
			msgs:   msgs("system", "Be brief.", "user", "A?", "assistant", "a", "user", "B?", "assistant", "b"),
			full:   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nA?<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n<|im_start|>user\nB?<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|endoftext|>",
			learnt: "a<|im_end|>\n|b<|im_end|>\n<|endoftext|>",
		},
		{
			name:   "last turn rendered differently (Qwen3 think block)",
			msgs:   msgs("user", "A?", "assistant", "a", "user", "B?", "assistant", "b"),
			tmpl:   chatML{thinkLast: true},
			full:   "<|im_start|>user\nA?<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n<|im_start|>user\nB?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nb<|im_end|>\n<|endoftext|>",
			learnt: "a<|im_end|>\n|<think>\n\n</think>\n\nb<|im_end|>\n<|endoftext|>",
		},
		{
			name:   "train on inputs",
			msgs:   msgs("user", "Q", "assistant", "A"),
			opts:   Options{TrainOnInputs: true},
			full:   "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|endoftext|>",
			learnt: "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|endoftext|>",
		},
		{
			name:   "template closes turns with EOS: no second EOS",
			msgs:   msgs("user", "Q", "assistant", "A"),
			tmpl:   chatML{end: "<|endoftext|>"},
			full:   "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|endoftext|>",
			learnt: "A<|endoftext|>",
		},
		{
			name:   "ends with a user turn: EOS not learnt",
			msgs:   msgs("user", "Q", "assistant", "A", "user", "more?"),
			full:   "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nmore?<|im_end|>\n<|endoftext|>",
			learnt: "A<|im_end|>\n",
		},
		{
			// LLaMA-Factory's ShareGPT allows a conversation that the
			// assistant opens: its header is context, as every turn's.
			name:   "assistant speaks first",
			msgs:   msgs("assistant", "Hi! Ask me.", "user", "Capital of Peru?", "assistant", "Lima"),
			full:   "<|im_start|>assistant\nHi! Ask me.<|im_end|>\n<|im_start|>user\nCapital of Peru?<|im_end|>\n<|im_start|>assistant\nLima<|im_end|>\n<|endoftext|>",
			learnt: "Hi! Ask me.<|im_end|>\n|Lima<|im_end|>\n<|endoftext|>",
		},
		{
			name:   "no EOS",
			msgs:   msgs("user", "Q", "assistant", "A"),
			opts:   Options{NoEOS: true},
			full:   "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n",
			learnt: "A<|im_end|>\n",
		},
	}
	for _, tc := range tests {
		for _, enc := range []struct {
			name string
			e    Encoder
		}{{"segments", byteEncoder{}}, {"offsets", byteOffsetEncoder{}}} {
			t.Run(tc.name+"/"+enc.name, func(t *testing.T) {
				p := &Preprocessor{Enc: enc.e, Tmpl: tc.tmpl, EOS: fakeEOT, Opts: tc.opts}
				got, out, err := p.Tokenize(format.Example{Messages: tc.msgs, Source: "f:1"})
				if err != nil {
					t.Fatal(err)
				}
				if out != Kept || got.Source != "f:1" {
					t.Errorf("outcome %v source %q", out, got.Source)
				}
				if s := fakeDecode(got.IDs); s != tc.full {
					t.Errorf("ids decode to\n%q, want\n%q", s, tc.full)
				}
				if s := learntRuns(got); s != tc.learnt {
					t.Errorf("learnt %q, want %q", s, tc.learnt)
				}
			})
		}
	}
}

func TestTokenizeCompletion(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, EOS: fakeEOT}
	got, _, err := p.Tokenize(format.Example{Text: "once upon"})
	if err != nil {
		t.Fatal(err)
	}
	if s := fakeDecode(got.IDs); s != "<s>once upon<|endoftext|>" {
		t.Errorf("ids decode to %q", s)
	}
	if s := learntRuns(got); s != "<s>once upon<|endoftext|>" {
		t.Errorf("learnt %q: completion text is learnt in full", s)
	}
}

// TestTokenizeTextEndingWithEOS: a text that already ends with the EOS
// token (Unsloth's formatting_prompts_func appends tokenizer.eos_token)
// was learnt with two; EOS is appended only when the text's tokens do not
// end with it, as TRL's SFTTrainer does. The ids decide, not the string:
// text that only resembles EOS still gets one.
func TestTokenizeTextEndingWithEOS(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"Lima<|endoftext|>", "<s>Lima<|endoftext|>"},
		{"Lima<|endoftext|>\n", "<s>Lima<|endoftext|>\n<|endoftext|>"},
		{"Lima<|endoftext|", "<s>Lima<|endoftext|<|endoftext|>"},
		{"<|endoftext|>Lima", "<s><|endoftext|>Lima<|endoftext|>"},
	} {
		for _, split := range []Overflow{Truncate, Split} {
			p := &Preprocessor{Enc: byteEncoder{}, EOS: fakeEOT, Opts: Options{MaxLen: 64, Overflow: split}}
			got, _, err := p.Tokenize(format.Example{Text: tc.text})
			if err != nil {
				t.Fatal(err)
			}
			if s := fakeDecode(got.IDs); s != tc.want {
				t.Errorf("%q (overflow %d): ids decode to %q, want %q", tc.text, split, s, tc.want)
			}
			if s := learntRuns(got); s != tc.want {
				t.Errorf("%q (overflow %d): learnt %q, want %q", tc.text, split, s, tc.want)
			}
		}
	}
}

func TestTokenizeNotPrefixStable(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{dropHistory: true}, EOS: fakeEOT}
	_, _, err := p.Tokenize(format.Example{Messages: msgs("user", "a", "assistant", "b", "user", "c", "assistant", "d"), Source: "x.jsonl:7"})
	if !errors.Is(err, ErrNotPrefixStable) || !strings.Contains(err.Error(), "x.jsonl:7") {
		t.Errorf("error %v, want ErrNotPrefixStable naming the source", err)
	}
	// train_on_inputs needs no spans, so it works with such templates.
	p.Opts.TrainOnInputs = true
	if _, _, err := p.Tokenize(format.Example{Messages: msgs("user", "a", "assistant", "b", "user", "c", "assistant", "d")}); err != nil {
		t.Errorf("train_on_inputs: %v", err)
	}
}

func TestOverlongExamples(t *testing.T) {
	exs := []format.Example{
		// user turn 9 tokens, assistant header 11, "A<|im_end|>\n" 3, EOS 1: 24.
		{Messages: msgs("user", "Q", "assistant", "A")},
		// user turn 58 tokens: truncation at 22 leaves nothing to learn.
		{Messages: msgs("user", strings.Repeat("long ", 10), "assistant", "A")},
		{Text: "short"}, // BOS + 5 + EOS
	}
	tests := []struct {
		name string
		opts Options
		want Stats
		lens []int
	}{
		{"no limit", Options{}, Stats{Examples: 3, Kept: 3, Tokens: 24 + 73 + 7, LabelTokens: 4 + 4 + 7}, []int{24, 73, 7}},
		// Cut after "A<|im_end|>": 2 learnt tokens remain.
		{"truncate", Options{MaxLen: 22}, Stats{Examples: 3, Kept: 2, Truncated: 1, DroppedNoLabel: 1, Tokens: 22 + 7, LabelTokens: 2 + 7}, []int{22, 7}},
		{"drop", Options{MaxLen: 24, Overflow: Drop}, Stats{Examples: 3, Kept: 2, Dropped: 1, Tokens: 24 + 7, LabelTokens: 4 + 7}, []int{24, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Opts: tc.opts}
			docs, st, err := p.TokenizeAll(exs)
			if err != nil {
				t.Fatal(err)
			}
			st.Longest = 0 // checked by TestOverPositions
			if !reflect.DeepEqual(st, tc.want) {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			var lens []int
			for _, d := range docs {
				lens = append(lens, len(d.IDs))
			}
			if len(lens) != len(tc.lens) {
				t.Fatalf("lengths %v, want %v", lens, tc.lens)
			}
			for i := range lens {
				if lens[i] != tc.lens[i] {
					t.Errorf("lengths %v, want %v", lens, tc.lens)
				}
			}
		})
	}
}

func TestRuneOffsetsToBytes(t *testing.T) {
	text := "añb€c" // a ñ(2 bytes) b €(3 bytes) c
	got := RuneOffsetsToBytes(text, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {0, 0}, {2, 9}})
	want := [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 7}, {7, 8}, {0, 0}, {3, 8}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("offset %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestOverPositions: examples longer than the model's positions were kept
// without a word; they are counted, with the first one named.
func TestOverPositions(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Opts: Options{MaxPositions: 30}}
	exs := []format.Example{
		{Messages: msgs("user", "Q", "assistant", "A"), Source: "d.jsonl:1"},
		{Messages: msgs("user", strings.Repeat("q", 40), "assistant", "A"), Source: "d.jsonl:2"},
		{Messages: msgs("user", strings.Repeat("q", 50), "assistant", "A"), Source: "d.jsonl:3"},
	}
	var tally Stats
	p.Tally = &tally
	_, st, err := p.TokenizeAll(exs)
	if err != nil {
		t.Fatal(err)
	}
	if st.OverPositions != 2 || st.FirstOverPositions != "d.jsonl:2" || tally.OverPositions != 2 {
		t.Errorf("stats %+v, tally %+v", st, tally)
	}
	if w := st.PositionsWarning(30); !strings.Contains(w, "2 examples are longer than the model's 30 positions") || !strings.Contains(w, "d.jsonl:2") {
		t.Errorf("warning %q", w)
	}
	p.Opts.MaxLen = 30 // truncated to the limit: nothing over
	if _, st, _ = p.TokenizeAll(exs); st.OverPositions != 0 || st.PositionsWarning(30) != "" {
		t.Errorf("after truncation: %+v", st)
	}
}

// TestNoneKeptError: when every example is dropped for its length, the
// error says so and names the setting, where the mixer said "every
// subject is empty".
func TestNoneKeptError(t *testing.T) {
	long := []format.Example{{Messages: msgs("user", strings.Repeat("q", 100), "assistant", "A"), Source: "d.jsonl:1"}}
	for _, o := range []Overflow{Drop, Truncate} {
		p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Opts: Options{MaxLen: 20, Overflow: o}}
		_, st, err := p.TokenizeAll(long)
		if err != nil {
			t.Fatal(err)
		}
		err = st.NoneKeptError("subject geo train", 20)
		if err == nil || !strings.Contains(err.Error(), "subject geo train: all 1 examples were dropped") ||
			!strings.Contains(err.Error(), "sequence length of 20 tokens") || !strings.Contains(err.Error(), "--seq-len") {
			t.Errorf("overflow %d: %v", o, err)
		}
	}
	if err := (Stats{Examples: 2, Kept: 1}).NoneKeptError("x", 20); err != nil {
		t.Errorf("some kept: %v", err)
	}
}

// TestTokenizeCancelled: a cancelled context stops tokenising at the next
// example, and reaches a template that can take it.
func TestTokenizeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rendered := 0
	tmpl := ContextRenderFunc(func(ctx context.Context, ms []format.Message, gen bool) (string, error) {
		rendered++
		if rendered == 3 {
			cancel()
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		return chatML{}.Render(ms, gen)
	})
	// One worker: the serial loop stops at the third example exactly
	// (TestTokenizeAllParallelCancelled has several).
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: tmpl, EOS: fakeEOT, Opts: Options{TrainOnInputs: true}, Workers: 1}
	exs := make([]format.Example, 100)
	for i := range exs {
		exs[i] = format.Example{Messages: msgs("user", "Q", "assistant", "A"), Source: fmt.Sprintf("d.jsonl:%d", i+1)}
	}
	_, st, err := p.TokenizeAllContext(ctx, exs)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "d.jsonl:3") || st.Examples != 2 {
		t.Errorf("err %v after %d examples", err, st.Examples)
	}
}

// TestOptionsHashHasTheLabellingRevision: caches written before a text
// ending with EOS kept one EOS (and an opening assistant turn its header
// as context) hold other tokens for the same options; their key differs,
// so they are rebuilt rather than trained on.
func TestOptionsHashHasTheLabellingRevision(t *testing.T) {
	before := HashString("train_on_inputs=false max_len=0 overflow=0 no_eos=false eos=0") // the key of such caches
	if OptionsHash(Options{}, 0) == before {
		t.Error("the options key is the one of caches tokenised before labelling=2")
	}
}
