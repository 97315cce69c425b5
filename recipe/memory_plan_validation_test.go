package recipe

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestMemoryPlanCountsValidationLogits: validation computes the logits of
// every row of a batch over the whole vocabulary (training's loss never
// does: it runs over chunks of rows), and the plan's peak holds them: at
// Qwen2.5-0.5B's vocabulary (151936), with gradient checkpointing at
// 4 × 2048 tokens, they are 2.3 GiB in bf16 on a GPU and 4.6 GiB in
// float32 on the CPU, more than the checkpointed step's activations and
// logits (the plan without them was 2.3 GiB on the GPU, 3.7 on the CPU):
// a run capped between the two could fit its steps and run out of memory
// in its first validation. Tiny-base's logits (4 × 128 × 4096) are under
// its step's, and its plan is as it was.
func TestMemoryPlanCountsValidationLogits(t *testing.T) {
	// Qwen2.5-0.5B's widths: a small model with a large vocabulary.
	big, err := nn.ParseConfig([]byte(`{"model_type": "llama", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
		"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 32768,
		"tie_word_embeddings": true, "torch_dtype": "bfloat16"}`))
	if err != nil {
		t.Fatal(err)
	}
	o := tinyOptions(t)
	o.GradCheckpointing, o.BatchSize, o.SeqLen = true, 4, 2048
	tokens := float64(4 * 2048 * big.VocabSize)
	for _, c := range []struct {
		name      string
		precision string
		f         deviceFacts
		bytes     float64 // of a logit
	}{
		{"GPU bf16", "bf16", deviceFacts{gpu: true, name: "a GPU", free: 80 << 30}, 2},
		{"CPU", "f32", deviceFacts{}, 4},
	} {
		o.Precision = c.precision
		p := o.planFor(big, c.f)
		logits := tokens * c.bytes
		if p.Peak < p.Weights+p.Adapters+p.Runtime+logits {
			t.Errorf("%s: peak %s leaves out validation's logits (%s): %s", c.name, gib(p.Peak), gib(logits), p)
		}
		if !strings.Contains(p.String(), "validation's full-vocabulary logits") {
			t.Errorf("%s: the plan does not say validation makes its peak: %s", c.name, p)
		}
		// Capped under the validation's peak, the step's savers cannot make
		// it fit: the run is refused up front.
		if c.f.gpu {
			capped := o
			capped.MaxDeviceMemory = int64(p.Weights + p.Adapters + logits/2)
			if err := capped.planMemory(big, c.f, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "at its peak") {
				t.Errorf("%s: a cap under validation's logits: %v, want a refusal", c.name, err)
			}
		}
	}

	tiny, err := nn.LoadConfig(tinyOptions(t).ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	to := tinyOptions(t)
	tp := to.planFor(tiny, deviceFacts{})
	if want := tp.Weights + tp.Adapters + tp.Activations + tp.Logits + tp.Runtime + tp.Heap; tp.Peak != want || strings.Contains(tp.String(), "validation's") {
		t.Errorf("tiny-base: peak %s, want the step's %s: %s", gib(tp.Peak), gib(want), tp)
	}
}
