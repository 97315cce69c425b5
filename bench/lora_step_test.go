package bench

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// BenchmarkLoRAStepTinyBase times one forward+backward of a LoRA step on
// the tiny-base model (bf16 frozen weights), reporting tokens/s.
func BenchmarkLoRAStepTinyBase(b *testing.B) {
	for _, shape := range [][2]int{{8, 256}, {1, 512}} {
		B, T := shape[0], shape[1]
		b.Run(fmt.Sprintf("B%dxT%d", B, T), func(b *testing.B) {
			m, a := loratest.Attached(b, "../assets/models/tiny-base", nn.LoadOptions{KeepBF16: true}, lora.NewConfig(16, 32, "all-linear"), 1)
			ids := make([]int64, B*T)
			for i := range ids {
				ids[i] = int64((i*7919 + 13) % m.Config.VocabSize)
			}
			in := nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, B, T), Labels: tensor.FromHost(m.Backend, tensor.I64, ids, B, T)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tp := autograd.NewTape()
				out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := tp.Backward(out.Loss); err != nil {
					b.Fatal(err)
				}
				for _, p := range a.Params() {
					p.ZeroGrad()
				}
			}
			b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
