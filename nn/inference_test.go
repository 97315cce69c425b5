package nn

import (
	"slices"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/tinymodels"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// A forward on an inference tape (what validation, DPO's reference and
// evaluation run) computes what a forward on a nil tape computes, bit for
// bit, on every family's block (Llama, Qwen3's head norms, Gemma 2 and 3's
// sandwich norms, sliding windows and softcaps, Phi-3's fused projections)
// and for every output a caller can ask for (or none), with padding and packed
// documents, on a backend that poisons what is released (a release before
// a value's last use would change the outputs); its peak is lower, and
// once it returns only its outputs are still allocated.
func TestInferenceForwardMatchesNilTape(t *testing.T) {
	folders := map[string]string{"llama": "../assets/models/tiny-base"}
	for _, f := range []string{"qwen3", "gemma2", "gemma3", "phi3", "phi4mini", "smollm3"} {
		folders[f] = tinymodels.Dir(t, f)
	}
	options := map[string]ForwardOptions{
		"logits and loss": {},
		"loss only":       {LossOnly: true},
		"row losses":      {RowLosses: true},
		"hidden states":   {KeepHidden: true},
		"no head":         {NoHead: true}, // an importance matrix's pass: nothing returned
	}
	for family, dir := range folders {
		for name, opt := range options {
			t.Run(family+"/"+name, func(t *testing.T) {
				type pass struct {
					outs       [][]float32
					peak, left int64
				}
				run := func(tp *autograd.Tape) pass {
					be := backendtest.NewCounting()
					m, err := Load(dir, LoadOptions{Backend: be})
					if err != nil {
						t.Fatal(err)
					}
					in := inferenceBatch(be, m.Config.VocabSize)
					start := be.Live()
					be.ResetPeak()
					out, err := m.Forward(tp, in, opt)
					if err != nil {
						t.Fatal(err)
					}
					vars := append([]*autograd.Var{out.Logits, out.Loss, out.RowLoss}, out.Hidden...)
					var p pass
					seen := map[tensor.Storage]bool{}
					var kept int64
					for _, v := range vars {
						if v == nil {
							continue
						}
						p.outs = append(p.outs, v.Value.To(tensor.F32).F32())
						if st := v.Value.Storage(); !seen[st] {
							seen[st] = true
							kept += int64(st.Len() * st.DType().Size())
						}
					}
					p.peak, p.left = be.Peak()-start, be.Live()-start-kept
					return p
				}
				want, got := run(nil), run(autograd.NewInference())
				if len(got.outs) != len(want.outs) || len(want.outs) == 0 && !opt.NoHead {
					t.Fatalf("%d outputs on an inference tape, %d on a nil tape", len(got.outs), len(want.outs))
				}
				for i := range want.outs {
					if !slices.Equal(got.outs[i], want.outs[i]) {
						t.Fatalf("output %d differs from the nil tape's (bit for bit)", i)
					}
				}
				if got.left != 0 {
					t.Errorf("%d bytes still allocated after the pass besides its outputs", got.left)
				}
				if got.peak >= want.peak {
					t.Errorf("peak %d bytes on an inference tape, %d on a nil tape", got.peak, want.peak)
				}
				t.Logf("peak %d bytes, nil tape %d", got.peak, want.peak)
			})
		}
	}
}

// inferenceBatch is two rows of 12 tokens: the first two documents packed
// (segments), the second padded on the left, labels on every real token.
func inferenceBatch(be tensor.Backend, vocab int) Batch {
	const B, T = 2, 12
	ids := make([]int64, B*T)
	mask := make([]int64, B*T)
	segs := make([]int64, B*T)
	labels := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % vocab)
		mask[i], labels[i] = 1, ids[i]
		if i < T && i >= 5 {
			segs[i] = 1
		}
		if i >= T && i < T+3 {
			mask[i], labels[i] = 0, IgnoreIndex
		}
	}
	return Batch{
		InputIDs:      tensor.FromHost(be, tensor.I64, ids, B, T),
		AttentionMask: tensor.FromHost(be, tensor.I64, mask, B, T),
		Segments:      tensor.FromHost(be, tensor.I64, segs, B, T),
		Labels:        tensor.FromHost(be, tensor.I64, labels, B, T),
	}
}
