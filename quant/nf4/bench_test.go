package nf4

import (
	"fmt"
	"testing"
)

// BenchmarkDequantBlock measures the inner loop on one 64-value block and
// on a 4096-value row (bytes counted: the packed input).
func BenchmarkDequantBlock(b *testing.B) {
	for _, n := range []int{64, 4096} {
		packed := make([]byte, n/2)
		for i := range packed {
			packed[i] = byte(i * 37)
		}
		dst := make([]float32, n)
		b.Run(fmt.Sprintf("n=%d/generic", n), func(b *testing.B) {
			b.SetBytes(int64(len(packed)))
			for b.Loop() {
				DequantBlockGeneric(dst, packed, 0.5)
			}
		})
		b.Run(fmt.Sprintf("n=%d/dispatch", n), func(b *testing.B) {
			b.SetBytes(int64(len(packed)))
			for b.Loop() {
				DequantBlock(dst, packed, 0.5)
			}
		})
	}
}

// BenchmarkDequantizeRows expands a 16-row panel of a 4096x4096 weight, the
// unit a GEMM packs (scales recovered from the double quantization).
func BenchmarkDequantizeRows(b *testing.B) {
	const rows, cols, panel = 4096, 4096, 16
	q, err := Quantize(normalData(rows*cols, 0.02, 31), []int{rows, cols})
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, panel*cols)
	b.SetBytes(int64(panel * cols / 2))
	row := 0
	for b.Loop() {
		q.DequantizeRows(dst, row, panel)
		row = (row + panel) % rows
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(panel*cols), "ns/value")
}

func BenchmarkQuantize(b *testing.B) {
	w := normalData(1024*1024, 0.02, 32)
	b.SetBytes(int64(4 * len(w)))
	for b.Loop() {
		if _, err := Quantize(w, []int{1024, 1024}); err != nil {
			b.Fatal(err)
		}
	}
}
