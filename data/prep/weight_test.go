package prep

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestWeightZeroAnswers: an assistant message of weight 0 is context, not
// an answer: the conversation's ids are those without weights, and only
// the other answers are learnt, on the linear path and on the
// per-turn-rendering one (an answer holding the markers' prefix takes
// it), with each encoder; the end of text after a last answer of weight 0
// is not learnt; a conversation whose answers all have weight 0 has
// nothing to learn; train_on_inputs with a weight is refused.
func TestWeightZeroAnswers(t *testing.T) {
	const eot = "<|im_end|>\n"
	const think = "<think>\n\n</think>\n\n" // Qwen3's template writes it before the final answer
	noLoss := func(m format.Message) format.Message { m.NoLoss = true; return m }
	r := qwen3Renderer(t, nil)
	for _, odd := range []string{"", markAny} { // the linear path, then per-turn renderings
		a := assistant("A"+odd, "")
		tests := []struct {
			name string
			msgs []format.Message
			want string // learnt runs, "|" between them
		}{
			{"first answer weight 0", []format.Message{user("a?"), noLoss(a), user("b?"), assistant("B", "")}, think + "B" + eot},
			{"last answer weight 0", []format.Message{user("a?"), a, user("b?"), noLoss(assistant("B", ""))}, "A" + odd + eot},
			{"middle answer weight 0", []format.Message{user("a?"), a, user("b?"), noLoss(assistant("B", "")), user("c?"), assistant("C", "")}, "A" + odd + eot + "|" + think + "C" + eot},
		}
		for _, tc := range tests {
			for _, enc := range []Encoder{byteEncoder{}, byteOffsetEncoder{}} {
				p := &Preprocessor{Enc: enc, Tmpl: r, EOS: fakeImEnd}
				got, o, err := p.Tokenize(format.Example{Messages: tc.msgs, Source: "w.jsonl:1"})
				if err != nil || o != Kept {
					t.Fatalf("%s (%T, %q): outcome %v, %v", tc.name, enc, odd, o, err)
				}
				plain := slices.Clone(tc.msgs)
				for i := range plain {
					plain[i].NoLoss = false
				}
				want, _, err := p.Tokenize(format.Example{Messages: plain, Source: "w.jsonl:1"})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.IDs, want.IDs) {
					t.Errorf("%s (%T, %q): the weights changed the ids", tc.name, enc, odd)
				}
				if runs := learntRuns(got); runs != tc.want {
					t.Errorf("%s (%T, %q): learnt %q, want %q", tc.name, enc, odd, runs, tc.want)
				}
			}
		}
	}
	// With an end of text the template does not write, it is appended
	// after the last answer, and learnt with it only.
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: r, EOS: fakeEOT}
	for _, w := range []struct {
		last format.Message
		want string
	}{{assistant("B", ""), "A" + eot + "|" + think + "B" + eot + "<|endoftext|>"}, {noLoss(assistant("B", "")), "A" + eot}} {
		got, _, err := p.Tokenize(format.Example{Messages: []format.Message{user("a?"), assistant("A", ""), user("b?"), w.last}})
		if err != nil {
			t.Fatal(err)
		}
		if runs := learntRuns(got); runs != w.want || got.IDs[len(got.IDs)-1] != fakeEOT {
			t.Errorf("end of text after the last answer (weight 0: %v): learnt %q, want %q", w.last.NoLoss, runs, w.want)
		}
	}
	// A token cache of the conversation without its weights is not reused.
	weighted := []format.Message{user("a?"), noLoss(assistant("A", "")), user("b?"), assistant("B", "")}
	plain := slices.Clone(weighted)
	plain[1].NoLoss = false
	if HashExamples([]format.Example{{Messages: weighted}}) == HashExamples([]format.Example{{Messages: plain}}) {
		t.Error("the examples' hash does not change with a weight")
	}
	p.EOS = fakeImEnd
	if _, o, err := p.Tokenize(format.Example{Messages: []format.Message{user("a?"), noLoss(assistant("A", ""))}}); err != nil || o != DroppedNoLabel {
		t.Errorf("every answer of weight 0: outcome %v, %v; want nothing to learn", o, err)
	}
	p.Opts.TrainOnInputs = true
	if _, _, err := p.Tokenize(format.Example{Messages: []format.Message{user("a?"), noLoss(assistant("A", "")), user("b?"), assistant("B", "")}}); err == nil || !strings.Contains(err.Error(), "message 1 has weight 0, and train_on_inputs learns every token") {
		t.Errorf("train_on_inputs with a weight: %v", err)
	}
}

// TestMaskHistory: Options.MaskHistory learns only the last answer of a
// conversation, with the same ids; a last answer of weight 0 is refused as
// leaving nothing to learn (not counted as a prompt that fills the row);
// train_on_inputs with it is refused; its token caches are apart.
func TestMaskHistory(t *testing.T) {
	const eot = "<|im_end|>\n"
	r := qwen3Renderer(t, nil)
	msgs := []format.Message{user("a?"), assistant("A", ""), user("b?"), assistant("B", ""), user("c?"), assistant("C", "")}
	for _, enc := range []Encoder{byteEncoder{}, byteOffsetEncoder{}} {
		all := &Preprocessor{Enc: enc, Tmpl: r, EOS: fakeImEnd}
		last := &Preprocessor{Enc: enc, Tmpl: r, EOS: fakeImEnd, Opts: Options{MaskHistory: true}}
		want, _, err := all.Tokenize(format.Example{Messages: msgs})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := last.Tokenize(format.Example{Messages: msgs})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.IDs, want.IDs) {
			t.Errorf("%T: mask_history changed the ids", enc)
		}
		if runs := learntRuns(got); runs != "<think>\n\n</think>\n\nC"+eot {
			t.Errorf("%T: learnt %q, want the last answer only", enc, runs)
		}
		weightless := slices.Clone(msgs)
		weightless[5].NoLoss = true
		if _, _, err := last.Tokenize(format.Example{Messages: weightless}); err == nil || !strings.Contains(err.Error(), "message 5, the last answer, has weight 0, and mask_history learns only the last answer") {
			t.Errorf("%T: last answer of weight 0 under mask_history: %v; want it refused as nothing to learn", enc, err)
		}
	}
	both := &Preprocessor{Enc: byteEncoder{}, Tmpl: r, EOS: fakeImEnd, Opts: Options{MaskHistory: true, TrainOnInputs: true}}
	if _, _, err := both.Tokenize(format.Example{Messages: msgs}); err == nil || !strings.Contains(err.Error(), "mask_history") {
		t.Errorf("mask_history with train_on_inputs: %v", err)
	}
	if OptionsHash(Options{MaskHistory: true}, 0) == OptionsHash(Options{}, 0) {
		t.Error("the options' hash does not change with mask_history")
	}
}

// TestPromptContextAnswers: an answer in a prompt/completion record's
// prompt (format.Message.Context, NoLoss too) is not learnt, as an answer
// of weight 0 is not; train_on_inputs learns it with every other token
// instead of refusing it as a weight.
func TestPromptContextAnswers(t *testing.T) {
	const eot = "<|im_end|>\n"
	const think = "<think>\n\n</think>\n\n"
	a := assistant("A", "")
	a.NoLoss, a.Context = true, true
	msgs := []format.Message{user("a?"), a, user("b?"), assistant("B", "")}
	for _, enc := range []Encoder{byteEncoder{}, byteOffsetEncoder{}} {
		p := &Preprocessor{Enc: enc, Tmpl: qwen3Renderer(t, nil), EOS: fakeImEnd}
		got, _, err := p.Tokenize(format.Example{Messages: msgs, Source: "c.jsonl:1"})
		if err != nil {
			t.Fatal(err)
		}
		if runs := learntRuns(got); runs != think+"B"+eot {
			t.Errorf("%T: learnt %q, want only the completion", enc, runs)
		}
		p.Opts.TrainOnInputs = true
		all, _, err := p.Tokenize(format.Example{Messages: msgs, Source: "c.jsonl:1"})
		if err != nil {
			t.Fatalf("%T: train_on_inputs with a prompt's answer: %v", enc, err)
		}
		for j, l := range all.Labels {
			if l != all.IDs[j] {
				t.Fatalf("%T: train_on_inputs left token %d unlearnt", enc, j)
			}
		}
	}
}
