package nn

import (
	"testing"

	"github.com/ftune/ftune/tensor"
)

// BenchmarkRopeTables: the host's work for one forward's cos/sin tables at
// SmolLM2-135M's head size (64) for a batch of 8 × 2048, positions 0..T−1
// per row. On a GPU it happens before the step's first kernel is queued,
// with the GPU idle. fresh: rows computed for the pass (RopeTablesAt);
// model: the rows a Model keeps across passes, gathered.
func BenchmarkRopeTables(b *testing.B) {
	c := Config{HeadDim: 64, Rope: RopeConfig{Theta: 100000, Type: "default"}}
	const B, T = 8, 2048
	pos := make([]int, B*T)
	for i := range pos {
		pos[i] = i % T
	}
	cpu := tensor.CPUDefault()
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			c.RopeTablesAt(cpu, tensor.F32, pos, B, T, T)
		}
	})
	b.Run("model", func(b *testing.B) {
		var rows ropeRows
		for b.Loop() {
			rows.tables(c, cpu, tensor.F32, pos, B, T, T)
		}
	})
}
