package train_test

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

const tinyBase = "../assets/models/tiny-base"

// TestPackedLossEqualsUnpacked runs the same chat examples through the
// tiny-base model packed several to a row (positions restarting, attention
// confined to each document) and padded one per row: the summed token loss
// must agree. This is the bug users most often report in other tools.
func TestPackedLossEqualsUnpacked(t *testing.T) {
	m, err := nn.Load(tinyBase, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	eos, _ := tok.EOS()
	p := &prep.Preprocessor{
		Enc: prep.EncoderFunc(func(s string, special bool) ([]int, error) {
			e, err := tok.Encode(s, special)
			return e.IDs, err
		}),
		Tmpl: prep.RenderFunc(func(msgs []format.Message, gen bool) (string, error) {
			cm := make([]chat.Message, len(msgs))
			for i, x := range msgs {
				cm[i] = chat.Message{Role: x.Role, Content: x.Content}
			}
			return tmpl.Render(cm, gen)
		}),
		EOS: eos,
	}
	var exs []format.Example
	for i, c := range []string{"Paris", "Berlin", "Madrid", "Lisbon", "Rome", "Vienna", "Oslo"} {
		exs = append(exs, format.Example{Messages: []format.Message{
			{Role: "user", Content: fmt.Sprintf("Question %d: which city is the capital?", i)},
			{Role: "assistant", Content: c + " is the capital."},
		}})
	}
	pad, _ := tok.PAD()
	sum := func(pack bool) (float64, int) {
		rows, _, err := p.Rows(exs, prep.RowOptions{Pack: pack, SeqLen: 96})
		if err != nil {
			t.Fatal(err)
		}
		b := train.Collate(rows, nil, pad, m.Backend)
		out, err := m.Forward(nil, b.Batch, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The model's loss is a mean over labelled next tokens; count them
		// to get the sum.
		lab := b.Labels.I64()
		B, T := b.Labels.Dim(0), b.Labels.Dim(1)
		n := 0
		for r := 0; r < B; r++ {
			for i := 1; i < T; i++ {
				if lab[r*T+i] != nn.IgnoreIndex {
					n++
				}
			}
		}
		return out.Loss.Value.Item() * float64(n), len(rows)
	}
	packed, nPacked := sum(true)
	padded, nPadded := sum(false)
	if nPacked >= nPadded {
		t.Fatalf("packing did not pack: %d rows vs %d", nPacked, nPadded)
	}
	rel := (packed - padded) / padded
	t.Logf("summed loss: packed %.6f in %d rows, unpacked %.6f in %d rows (relative difference %.2g)", packed, nPacked, padded, nPadded, rel)
	// Float32 forward of the same tokens in different row layouts: the
	// GEMMs sum in other orders, ~1e-6 relative.
	if rel > 1e-5 || rel < -1e-5 {
		t.Fatalf("packed and unpacked losses differ by %.3g relative", rel)
	}
	_ = tensor.F32
}
