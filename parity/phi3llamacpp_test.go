package parity

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// llamaCppContext is n_ctx of the golden driver
// (export/gguf/testdata/llamacpp-check/logits.cpp): llama.cpp picks
// LongRoPE's long factors for the whole context when n_ctx exceeds
// original_max_position_embeddings (llama_model::get_rope_factors), where
// transformers and ftune pick them per forward pass from its largest
// position (nn.Config.InvFreq). The two agree when both sides are long
// (n_ctx and the prompt past the pretraining length: phi3-tiny, original
// 32, prompts of 36-48 tokens) or both short (n_ctx and the prompt within
// it: phi4mini-tiny, original 512). A prompt of at most 32 tokens on
// phi3-tiny would differ (llama.cpp long, transformers short), so the
// golden files hold none; checkPhi3Prompts holds them to that.
const llamaCppContext = 256

// TestPhi3LlamaCpp compares ftune's float32 logits on testdata/phi3-tiny
// (Phi-3.5-mini's layout: LongRoPE with short ≠ long factors, GQA,
// untied) with llama.cpp's phi3 (src/models/phi3.cpp) on ftune's F32 GGUF
// export of the same weights (llamacpp_logits.safetensors; README there).
// transformers was not at hand for Phi-3, so this is the family's reference
// for the forward pass, on the long factors.
//
// Tolerance: tolActivations (1e-4 relative Frobenius), as for Qwen3: both
// sides compute in float32 (no flash attention, float32 KV cache) and the
// SwiGLU, norms and attention are the float32 ones checked on Llama; only
// summation orders and float32 RoPE angles differ (measured in the README).
// Negative controls, each of which must miss prompt 0's golden logits by
// more than 1e-2: the short and long factors swapped, the LongRoPE
// attention factor ignored, and gate/up halves of gate_up_proj swapped.
func TestPhi3LlamaCpp(t *testing.T) {
	folder := phi3Tiny(t)
	checkPhi3Prompts(t, folder, true)
	checkLlamaCpp(t, folder, "phi3", tolActivations, phi3Controls(false))
}

// TestPhi4MiniLlamaCpp is TestPhi3LlamaCpp on testdata/phi4mini-tiny
// (Phi-4-mini's layout: partial rotary 0.75, so RoPE turns 12 of each
// head's 16 dimensions; tied embeddings; LongRoPE on the short factors,
// see llamaCppContext). Same tolerance and reasons; its controls add the
// whole head rotated (partial_rotary_factor ignored).
func TestPhi4MiniLlamaCpp(t *testing.T) {
	folder := phi4MiniTiny(t)
	checkPhi3Prompts(t, folder, false)
	checkLlamaCpp(t, folder, "phi4-mini", tolActivations, phi3Controls(true))
}

// checkPhi3Prompts: every golden prompt takes the long factors (long) or
// the short ones in both ftune and llama.cpp.
func checkPhi3Prompts(t *testing.T, folder string, long bool) {
	t.Helper()
	cfg, err := nn.LoadConfig(folder)
	if err != nil {
		t.Fatal(err)
	}
	orig := cfg.Rope.OriginalMaxPositions
	if cfg.Rope.Type != "longrope" || slices.Equal(cfg.Rope.ShortFactor, cfg.Rope.LongFactor) {
		t.Fatalf("%s: want LongRoPE with short ≠ long factors, got %+v", folder, cfg.Rope)
	}
	if (llamaCppContext > orig) != long {
		t.Fatalf("%s: llama.cpp's n_ctx %d against original %d does not pick the %s factors", folder, llamaCppContext, orig, map[bool]string{true: "long", false: "short"}[long])
	}
	golden, err := safetensors.Open(filepath.Join(folder, "llamacpp_logits.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	for p := 0; golden.Has(fmt.Sprintf("p%d.input_ids", p)); p++ {
		_, shape := ints(t, golden, fmt.Sprintf("p%d.input_ids", p))
		if (shape[1] > orig) != long {
			t.Fatalf("%s: prompt %d has %d tokens against original %d: transformers would not pick the factors llama.cpp does", folder, p, shape[1], orig)
		}
	}
}

// phi3Controls are the edits the golden logits must see.
func phi3Controls(partial bool) map[string]func(*nn.Model) {
	c := map[string]func(*nn.Model){
		"short and long factors swapped": func(m *nn.Model) {
			r := &m.Config.Rope
			r.ShortFactor, r.LongFactor = r.LongFactor, r.ShortFactor
		},
		"LongRoPE attention factor ignored": func(m *nn.Model) { m.Config.Rope.AttentionFactor = 1 },
		"gate and up halves of gate_up_proj swapped": func(m *nn.Model) {
			for _, b := range m.Layers {
				w := b.MLP.GateUp.Weight.Value
				n := w.Dim(0) / 2
				halves := tensor.Split(w, 0, n, n)
				w.CopyFrom(tensor.Concat(0, halves[1].Contiguous(), halves[0].Contiguous()))
			}
		},
	}
	if partial {
		c["partial rotary ignored (whole head rotated)"] = func(m *nn.Model) {
			r := &m.Config.Rope
			for len(r.ShortFactor) < m.Config.HeadDim/2 {
				r.ShortFactor = append(slices.Clone(r.ShortFactor), 1)
				r.LongFactor = append(slices.Clone(r.LongFactor), 1)
			}
			m.Config.PartialRotary = 1
		}
	}
	return c
}
