package parity

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

const tinyBase = "../assets/models/tiny-base"

// TestTinyBase checks the shipped default model against transformers: the
// bf16 weights stay bf16 (converted while GEMMs pack them) and are computed
// in float32 as transformers did after upcasting, so the float32 tolerance
// of the fixtures applies; greedy generations must be token-identical.
func TestTinyBase(t *testing.T) {
	model, err := nn.Load(tinyBase, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := model.Layers[0].Attn.Q.Weight.Value.DType(); got != tensor.BF16 {
		t.Fatalf("q_proj weight held as %v, want BF16 (no float32 copy of frozen weights)", got)
	}
	golden, err := safetensors.Open(tinyBase + "/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	for p := 0; golden.Has(fmt.Sprintf("p%d.input_ids", p)); p++ {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			ids, shape := ints(t, golden, fmt.Sprintf("p%d.input_ids", p))
			in := nn.Batch{InputIDs: tensor.FromHost(model.Backend, tensor.I64, ids, shape...)}
			out, err := model.Forward(nil, in, nn.ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			report(t, "logits", testutil.RelFrobenius(out.Logits.Value.F64(), floats(t, golden, fmt.Sprintf("p%d.logits", p))), tolActivations)

			want, _ := ints(t, golden, fmt.Sprintf("p%d.generate", p))
			prompt := make([]int, len(ids))
			for i, v := range ids {
				prompt[i] = int(v)
			}
			got, err := model.Generate(prompt, nn.GenerateOptions{MaxNewTokens: len(want) - len(ids)})
			if err != nil {
				t.Fatal(err)
			}
			full := append(prompt, got...)
			for i := range want {
				if i >= len(full) || int64(full[i]) != want[i] {
					t.Fatalf("greedy tokens differ at %d:\n got %v\nwant %v", i, full, want)
				}
			}
		})
	}
}
