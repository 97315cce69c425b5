package prep_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/testutil"
)

const tinyBase = "../../assets/models/tiny-base"

// hfEncoder adapts data/tokenizer to prep's interfaces.
type hfEncoder struct{ t *tokenizer.Tokenizer }

func (e hfEncoder) Encode(s string, add bool) ([]int, error) {
	enc, err := e.t.Encode(s, add)
	return enc.IDs, err
}

type hfOffsetEncoder struct{ hfEncoder }

func (e hfOffsetEncoder) EncodeOffsets(s string, add bool) ([]int, [][2]int, error) {
	enc, err := e.t.Encode(s, add)
	return enc.IDs, prep.RuneOffsetsToBytes(s, enc.Offsets), err
}

func chatRenderer(t *chat.Template) prep.Renderer {
	return prep.RenderFunc(func(ms []format.Message, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content}
		}
		return t.Render(cm, gen)
	})
}

// TestTinyBaseQuizMasks tokenises bundled quiz examples with the tiny-base
// tokenizer and ChatML template: the learnt tokens must decode to exactly
// "answer<|im_end|>\n<|endoftext|>", and encoding segment by segment must
// give the same ids as encoding the whole rendering (the offsets path).
func TestTinyBaseQuizMasks(t *testing.T) {
	tok, tmpl, eos := loadTinyBase(t)
	seg := &prep.Preprocessor{Enc: hfEncoder{tok}, Tmpl: chatRenderer(tmpl), EOS: eos}
	off := &prep.Preprocessor{Enc: hfOffsetEncoder{hfEncoder{tok}}, Tmpl: chatRenderer(tmpl), EOS: eos}
	dirs, _ := filepath.Glob("../../assets/data/subjects/*")
	if len(dirs) < 3 {
		t.Fatalf("bundled subjects: %v", dirs)
	}
	for _, dir := range dirs {
		exs, _, err := format.ReadAll(filepath.Join(dir, "val.jsonl"), format.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, sa, err := seg.TokenizeAll(exs)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := off.TokenizeAll(exs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !slices.Equal(a[i].IDs, b[i].IDs) || !slices.Equal(a[i].Labels, b[i].Labels) {
				t.Fatalf("%s: segment and whole-text encodings differ", a[i].Source)
			}
			var learnt []int
			for _, l := range a[i].Labels {
				if l != prep.IgnoreIndex {
					learnt = append(learnt, int(l))
				}
			}
			got, err := tok.Decode(learnt, false)
			if err != nil {
				t.Fatal(err)
			}
			if want := exs[i].Messages[1].Content + "<|im_end|>\n<|endoftext|>"; got != want {
				t.Fatalf("%s: learnt %q, want %q", a[i].Source, got, want)
			}
		}
		t.Logf("%s val: %d examples, %d tokens, %d learnt", filepath.Base(dir), sa.Kept, sa.Tokens, sa.LabelTokens)
	}
}

// TestQwen3MultiTurnMasks uses Qwen3's template, which renders the last
// assistant turn with an empty <think> block and earlier ones without: not
// prefix-stable, so the earlier turn is found by its content. Both turns
// must be learnt, with the end-of-turn token, and no EOS added after
// Qwen3's <|im_end|> (its EOS).
func TestQwen3MultiTurnMasks(t *testing.T) {
	tok, err := tokenizer.Load(testutil.Inflate(t, "../tokenizer/testdata/qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.Load("../chat/testdata/qwen3")
	if err != nil {
		t.Fatal(err)
	}
	eos, _ := tok.EOS()
	ex := format.Example{Messages: []format.Message{
		{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Capital of France?"}, {Role: "assistant", Content: "Paris"},
		{Role: "user", Content: "And of Peru?"}, {Role: "assistant", Content: "Lima"},
	}}
	want := []string{"Paris<|im_end|>\n", "<think>\n\n</think>\n\nLima<|im_end|>\n"}
	for _, enc := range []prep.Encoder{hfEncoder{tok}, hfOffsetEncoder{hfEncoder{tok}}} {
		p := &prep.Preprocessor{Enc: enc, Tmpl: chatRenderer(tmpl), EOS: eos}
		d, _, err := p.Tokenize(ex)
		if err != nil {
			t.Fatal(err)
		}
		var runs []string
		var cur []int
		for j, l := range append(d.Labels, prep.IgnoreIndex) {
			if l != prep.IgnoreIndex {
				cur = append(cur, int(d.IDs[j]))
			} else if cur != nil {
				s, _ := tok.Decode(cur, false)
				runs, cur = append(runs, s), nil
			}
		}
		if !slices.Equal(runs, want) {
			t.Errorf("%T: learnt %q, want %q", enc, runs, want)
		}
	}
}
