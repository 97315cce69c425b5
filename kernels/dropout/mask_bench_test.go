package dropout

import "testing"

// BenchmarkMask: one 1M-element mask (4 MiB) a run, the CPU's cost of a
// LoRA dropout mask per element (drawn twice a step: forward and backward).
func BenchmarkMask(b *testing.B) {
	d := make([]float32, 1<<20)
	drop, keep := Threshold(0.05)
	b.SetBytes(int64(len(d) * 4))
	for i := 0; i < b.N; i++ {
		Mask(d, 1, uint64(i), drop, keep)
	}
}

// BenchmarkApply: x·mask in one pass over a 1M-element x.
func BenchmarkApply(b *testing.B) {
	x := make([]float32, 1<<20)
	d := make([]float32, len(x))
	drop, keep := Threshold(0.05)
	b.SetBytes(int64(len(d) * 4))
	for i := 0; i < b.N; i++ {
		Apply(d, x, 1, uint64(i), drop, keep)
	}
}
