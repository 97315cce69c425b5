package asm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// BenchmarkInPlaceShapes times the blocked products whose A is a row-major
// activation (SmolLM2-like M=512 projections, the large-N LM head and
// attention-sized products), named M×N×K. Compare builds with and without
// the in-place-A path: go test -run '^$' -bench InPlaceShapes -cpu 1,2.
func BenchmarkInPlaceShapes(b *testing.B) {
	// FTUNE_INPLACE=off packs every A (the build before the in-place
	// path), so one test binary can interleave both.
	if os.Getenv("FTUNE_INPLACE") == "off" {
		g := gemmCur
		saved := g.inplace
		g.inplace = nil
		defer func() { g.inplace = saved }()
	}
	// -cpu sets the worker count, as in the other GEMM benchmarks.
	defer SetThreads(Threads())
	SetThreads(runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(7, 7))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*2 - 1)
		}
		return x
	}
	fillBF16 := func(n int) []uint16 {
		x := make([]uint16, n)
		for i := range x {
			x[i] = half.F32ToBF16(float32(rng.Float64()*2 - 1))
		}
		return x
	}
	for _, s := range []struct {
		name    string
		m, n, k int
		transB  bool
		bf16    bool
	}{
		{"lora_base_fwd_T", 2048, 704, 256, true, false},
		{"lora_base_bwd", 2048, 256, 704, false, false},
		{"smol_up_bf16T", 512, 1536, 576, true, true},
		{"smol_down_bf16", 512, 576, 1536, false, true},
		{"n3072_bf16T", 512, 3072, 576, true, true},
		{"n6144_bf16T", 512, 6144, 576, true, true},
		{"lmhead_bf16T", 512, 49152, 576, true, true},
		{"attn_qk_T", 64, 256, 32, true, false},
		{"attn_pv", 64, 32, 256, false, false},
		{"k2048", 512, 1024, 2048, false, false},
		{"k4096", 384, 512, 4096, false, false},
	} {
		a := fill(s.m * s.k)
		c := make([]float32, s.m*s.n)
		ldb := s.n
		if s.transB {
			ldb = s.k
		}
		var f func()
		if s.bf16 {
			bb := fillBF16(s.k * s.n)
			f = func() { SgemmBF16(false, s.transB, s.m, s.n, s.k, 1, a, s.k, bb, ldb, 0, c, s.n) }
		} else {
			bb := fill(s.k * s.n)
			f = func() { Sgemm(false, s.transB, s.m, s.n, s.k, 1, a, s.k, bb, ldb, 0, c, s.n) }
		}
		b.Run(fmt.Sprintf("%s/%dx%dx%d", s.name, s.m, s.n, s.k), func(b *testing.B) {
			f()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f()
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
