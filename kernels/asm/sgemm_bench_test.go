package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/half"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Benchmarks: go test -run '^$' -bench 'Sgemm' -cpu 1,2 ./kernels/asm
// (bench/README.md has the table and the OpenBLAS comparison). Names are
// M×K×N: C (M×N) = A (M×K) · B (K×N), all non-transposed. -cpu sets the
// worker count of ftune (SetThreads) and of gonum (GOMAXPROCS) alike.

type benchShape struct {
	m, k, n int
	naive   bool // the naive loop only where it finishes in seconds
}

var benchShapes = []benchShape{
	{256, 256, 256, true},
	{512, 512, 512, true},
	{1024, 1024, 1024, false},
	{2048, 2048, 2048, false},
	{4096, 2048, 2048, false},
	{4096, 2048, 8192, false},
}

func (s benchShape) String() string { return fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n) }

func benchOperands(s benchShape) (a, b, c []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*2 - 1)
		}
		return x
	}
	return fill(s.m * s.k), fill(s.k * s.n), make([]float32, s.m*s.n)
}

// runGemmBench times f and reports GFLOP/s (2·M·N·K flops per call) of
// wall time, and GFLOP per CPU-second (see processCPUSeconds).
func runGemmBench(b *testing.B, s benchShape, f func()) {
	f() // warm: buffers allocated, pages touched
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPUSeconds()
	for i := 0; i < b.N; i++ {
		f()
	}
	sec, cpu := time.Since(start).Seconds(), processCPUSeconds()-cpu0
	gflop := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N) / 1e9
	b.ReportMetric(gflop/sec, "GFLOP/s")
	if cpu > 0 {
		// per core: total flops over the CPU seconds of all workers
		b.ReportMetric(gflop/cpu, "GFLOP/cpu-s")
	}
}

// BenchmarkSgemm measures Sgemm with the implementation chosen at init.
func BenchmarkSgemm(b *testing.B) {
	defer SetThreads(Threads())
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			SetThreads(runtime.GOMAXPROCS(0))
			x, y, z := benchOperands(s)
			runGemmBench(b, s, func() { Sgemm(false, false, s.m, s.n, s.k, 1, x, s.k, y, s.n, 0, z, s.n) })
		})
	}
}

// BenchmarkSgemmImpl measures every implementation this CPU offers.
func BenchmarkSgemmImpl(b *testing.B) {
	defer SetThreads(Threads())
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		for _, s := range benchShapes {
			if impl == ImplGo && !s.naive {
				continue // the Go fallback is as slow as naive at big sizes
			}
			b.Run(string(impl)+"/"+s.String(), func(b *testing.B) {
				if err := SetImpl(impl); err != nil {
					b.Fatal(err)
				}
				SetThreads(runtime.GOMAXPROCS(0))
				x, y, z := benchOperands(s)
				runGemmBench(b, s, func() { Sgemm(false, false, s.m, s.n, s.k, 1, x, s.k, y, s.n, 0, z, s.n) })
			})
		}
	}
}

// BenchmarkSgemmBF16 measures the bf16-B path (B converted while packing).
func BenchmarkSgemmBF16(b *testing.B) {
	defer SetThreads(Threads())
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			SetThreads(runtime.GOMAXPROCS(0))
			x, y, z := benchOperands(s)
			h := make([]uint16, len(y))
			for i, v := range y {
				h[i] = uint16(math.Float32bits(v) >> 16)
			}
			runGemmBench(b, s, func() { SgemmBF16(false, false, s.m, s.n, s.k, 1, x, s.k, h, s.n, 0, z, s.n) })
		})
	}
}

// BenchmarkSgemmGonum is gonum's pure-Go Sgemm on the same shapes.
func BenchmarkSgemmGonum(b *testing.B) {
	var impl gonum.Implementation
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			x, y, z := benchOperands(s)
			runGemmBench(b, s, func() {
				impl.Sgemm(blas.NoTrans, blas.NoTrans, s.m, s.n, s.k, 1, x, s.k, y, s.n, 0, z, s.n)
			})
		})
	}
}

// BenchmarkSgemmNaive times GemmRef, the plain i-j-p loop the tests compare
// every kernel with: the floor to compare with.
func BenchmarkSgemmNaive(b *testing.B) {
	for _, s := range benchShapes {
		if !s.naive {
			continue
		}
		b.Run(s.String(), func(b *testing.B) {
			x, y, z := benchOperands(s)
			runGemmBench(b, s, func() { GemmRef(false, false, s.m, s.n, s.k, 1, x, s.k, y, s.n, 0, z, s.n) })
		})
	}
}

// BenchmarkSgemmSmall covers the LoRA / generation shapes, which must stay
// on the caller's goroutine with little packing overhead.
func BenchmarkSgemmSmall(b *testing.B) {
	for _, s := range []benchShape{{48, 4, 64, false}, {1, 64, 256, false}, {16, 16, 4096, false}, {16, 4096, 16, false}, {1, 2048, 2048, false}, {4, 2048, 2048, false}} {
		b.Run(s.String(), func(b *testing.B) {
			x, y, z := benchOperands(s)
			runGemmBench(b, s, func() { Sgemm(false, false, s.m, s.n, s.k, 1, x, s.k, y, s.n, 0, z, s.n) })
		})
		// B stored n×k, as a Linear weight in [out, in] layout is.
		b.Run(s.String()+"/transB", func(b *testing.B) {
			x, y, z := benchOperands(s)
			runGemmBench(b, s, func() { Sgemm(false, true, s.m, s.n, s.k, 1, x, s.k, y, s.k, 0, z, s.n) })
		})
		b.Run(s.String()+"/transB-bf16", func(b *testing.B) {
			x, y, z := benchOperands(s)
			h := make([]uint16, len(y))
			for i, v := range y {
				h[i] = uint16(math.Float32bits(v) >> 16)
			}
			runGemmBench(b, s, func() { SgemmBF16(false, true, s.m, s.n, s.k, 1, x, s.k, h, s.k, 0, z, s.n) })
		})
	}
}

// BenchmarkGemmBF16Dot measures the bf16 GEMM (both operands rounded to
// bf16, VDPBF16PS where the CPU has it) on BenchmarkSgemmBF16's operands:
// the ratio of the two is what precision bf16 buys a CPU run's products.
func BenchmarkGemmBF16Dot(b *testing.B) {
	defer SetThreads(Threads())
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			SetThreads(runtime.GOMAXPROCS(0))
			x, y, z := benchOperands(s)
			h := make([]uint16, len(y))
			F32ToBF16(h, y)
			runGemmBench(b, s, func() { GemmBF16DotB(false, false, s.m, s.n, s.k, 1, x, s.k, h, s.n, 0, z, s.n) })
		})
	}
}

// BenchmarkNF4Products times a QLoRA step's two products with one NF4
// weight of Llama-3-8B's MLP (14336×4096, blocks of 64) at 128 tokens, in
// float32 (SgemmSource) and in bf16 (GemmBF16DotSource): the forward
// x·Wᵀ (trans) and the backward's g·W. At few tokens the dequantization
// while packing weighs against the products.
func BenchmarkNF4Products(b *testing.B) {
	defer SetThreads(Threads())
	const tokens, out, in, bs = 128, 14336, 4096, 64
	rng := rand.New(rand.NewPCG(1, 2))
	packed := make([]byte, out*in/2)
	for i := range packed {
		packed[i] = byte(rng.IntN(256))
	}
	absmax := make([]float32, out*in/bs)
	for i := range absmax {
		absmax[i] = rng.Float32()
	}
	for _, dir := range []struct {
		name  string
		trans bool
		n, k  int
	}{{"xWt", true, out, in}, {"gW", false, in, out}} {
		src := NF4Source{Packed: packed, Absmax: absmax, BlockSize: bs, Rows: out, Cols: in, Trans: dir.trans}
		a := make([]float32, tokens*dir.k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		c := make([]float32, tokens*dir.n)
		s := benchShape{m: tokens, k: dir.k, n: dir.n}
		b.Run("f32/"+dir.name, func(b *testing.B) {
			SetThreads(runtime.GOMAXPROCS(0))
			runGemmBench(b, s, func() { SgemmSource(false, tokens, dir.n, dir.k, 1, a, dir.k, src, 0, c, dir.n) })
		})
		b.Run("bf16/"+dir.name, func(b *testing.B) {
			SetThreads(runtime.GOMAXPROCS(0))
			runGemmBench(b, s, func() { GemmBF16DotSource(false, tokens, dir.n, dir.k, 1, a, dir.k, src, 0, c, dir.n) })
		})
	}
}

// BenchmarkGemmWorkers splits a layer's products (x·Wᵀ with a bf16 weight
// [out, in], in float32 and in bf16) over 2 to 16 workers and reports
// GFLOP per CPU-second: the work the split adds (each worker packs the
// operand panels it reads, so a split repacks) shows there even on a
// machine with fewer cores than workers, where wall time cannot. Shapes
// are tokens×in×out.
//
//	go test -run '^$' -bench GemmWorkers -benchtime 20x ./kernels/asm
func BenchmarkGemmWorkers(b *testing.B) {
	defer SetThreads(Threads())
	for _, s := range []benchShape{{m: 512, k: 576, n: 1536}, {m: 512, k: 2048, n: 2048}, {m: 512, k: 2048, n: 8192}, {m: 2048, k: 2048, n: 2048}} {
		x, _, z := benchOperands(s)
		w := make([]uint16, s.n*s.k)
		for i := range w {
			w[i] = half.F32ToBF16(float32(i%7) - 3)
		}
		for _, workers := range []int{2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/f32/workers=%d", s, workers), func(b *testing.B) {
				SetThreads(workers)
				runGemmBench(b, s, func() { SgemmBF16(false, true, s.m, s.n, s.k, 1, x, s.k, w, s.k, 0, z, s.n) })
			})
			b.Run(fmt.Sprintf("%s/bf16/workers=%d", s, workers), func(b *testing.B) {
				SetThreads(workers)
				runGemmBench(b, s, func() { GemmBF16DotB(false, true, s.m, s.n, s.k, 1, x, s.k, w, s.k, 0, z, s.n) })
			})
		}
	}
}
