package asm

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSgemmKernel times the micro-kernel alone on L1/L2-resident
// panels: the ceiling the blocked driver can reach.
func BenchmarkSgemmKernel(b *testing.B) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		b.Run(string(impl), func(b *testing.B) {
			SetImpl(impl)
			g := gemmCur
			const kc = 256
			a := make([]float32, kc*g.mr)
			bb := make([]float32, kc*g.nr)
			c := make([]float32, g.mr*g.nr)
			start, cpu0 := time.Now(), processCPUSeconds()
			for i := 0; i < b.N; i++ {
				g.kernel(kc, a, bb, c, g.nr, 1, 1)
			}
			sec, cpu := time.Since(start).Seconds(), processCPUSeconds()-cpu0
			gflop := 2 * float64(kc*g.mr*g.nr) * float64(b.N) / 1e9
			b.ReportMetric(gflop/sec, "GFLOP/s")
			if cpu > 0 {
				b.ReportMetric(gflop/cpu, "GFLOP/cpu-s")
			}
		})
	}
}

// BenchmarkSgemmPack times packing a 1024×256 block of A (row-major and
// transposed) and a 256×1024 block of B (float32 and bf16, both layouts):
// the per-element cost the driver pays beside the kernel.
func BenchmarkSgemmPack(b *testing.B) {
	const m, kc, n = 1024, 256, 1024
	a := make([]float32, m*kc)
	bf := make([]float32, kc*n)
	bh := make([]uint16, kc*n)
	dst := make([]float32, m*kc+kc*n)
	var cpu0 float64
	start := func(b *testing.B) { b.ResetTimer(); cpu0 = processCPUSeconds() }
	report := func(b *testing.B, elems int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(elems), "ns/elem")
		if cpu := processCPUSeconds() - cpu0; cpu > 0 {
			b.ReportMetric(cpu*1e9/float64(b.N)/float64(elems), "cpu-ns/elem")
		}
	}
	for _, tr := range []bool{false, true} {
		b.Run(fmt.Sprintf("A/trans=%v", tr), func(b *testing.B) {
			ld := kc
			if tr {
				ld = m
			}
			start(b)
			for i := 0; i < b.N; i++ {
				packA(dst, a, ld, tr, 0, m, 0, kc, 12, gemmFor(Best()).packRows4)
			}
			report(b, m*kc)
		})
		b.Run(fmt.Sprintf("B/trans=%v", tr), func(b *testing.B) {
			ld := n
			if tr {
				ld = kc
			}
			src := f32Source{b: bf, ldb: ld, trans: tr, rows4: gemmFor(Best()).packRows4}
			start(b)
			for i := 0; i < b.N; i++ {
				src.PackB(dst, 0, kc, 0, n, 32)
			}
			report(b, kc*n)
		})
		b.Run(fmt.Sprintf("Bbf16/trans=%v", tr), func(b *testing.B) {
			ld := n
			if tr {
				ld = kc
			}
			g := gemmFor(Best())
			src := bf16Source{b: bh, ldb: ld, trans: tr, rows4: g.packRows4BF16, cvt: g.cvtBF16}
			start(b)
			for i := 0; i < b.N; i++ {
				src.PackB(dst, 0, kc, 0, n, 32)
			}
			report(b, kc*n)
		})
	}
}
