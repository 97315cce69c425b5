package asm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomNF4 makes a rows×cols NF4 matrix and its exact float32 expansion.
func randomNF4(r *rand.Rand, rows, cols, bs int) (NF4Source, []float32) {
	n := rows * cols
	packed := make([]byte, (n+1)/2)
	for i := range packed {
		packed[i] = byte(r.UintN(256))
	}
	absmax := make([]float32, (n+bs-1)/bs)
	for i := range absmax {
		absmax[i] = float32(0.1 + r.Float64())
	}
	full := make([]float32, n)
	for e := range full {
		nib := packed[e/2] >> 4
		if e%2 == 1 {
			nib = packed[e/2] & 15
		}
		full[e] = NF4Code[nib] * absmax[e/bs]
	}
	return NF4Source{Packed: packed, Absmax: absmax, BlockSize: bs, Rows: rows, Cols: cols}, full
}

// TestDequantNF4AnyOffset: every start and length against the values
// expanded one by one, under every implementation (AVX-512 dequantizes
// runs of whole blocks in one call), block sizes 64 and 32.
func TestDequantNF4AnyOffset(t *testing.T) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		for _, bs := range []int{64, 32} {
			checkDequantNF4AnyOffset(t, string(impl), bs)
		}
	}
}

func checkDequantNF4AnyOffset(t *testing.T, impl string, bs int) {
	r := rand.New(rand.NewPCG(1, 1))
	src, full := randomNF4(r, 7, 45, bs)
	for start := 0; start < 70; start++ {
		for _, n := range []int{0, 1, 2, 3, 63, 64, 65, 130, 200, 300} {
			if start+n > len(full) {
				continue
			}
			dst := make([]float32, n+2)
			dst[0], dst[n+1] = float32(math.NaN()), float32(math.NaN())
			DequantNF4(dst[1:n+1], src.Packed, src.Absmax, src.BlockSize, start)
			for i := 0; i < n; i++ {
				if dst[1+i] != full[start+i] {
					t.Fatalf("%s, block %d: start %d n %d: [%d] = %g, want %g", impl, bs, start, n, i, dst[1+i], full[start+i])
				}
			}
			if !math.IsNaN(float64(dst[0])) || !math.IsNaN(float64(dst[n+1])) {
				t.Fatalf("%s, block %d: start %d n %d: wrote outside dst", impl, bs, start, n)
			}
		}
	}
}

// TestSgemmNF4 checks the NF4 source through the whole GEMM against the
// reference on the expanded matrix, both as Wᵀ (forward) and W (backward).
func TestSgemmNF4(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, sz := range [][3]int{{1, 5, 3}, {7, 33, 65}, {40, 96, 200}, {3, 130, 64}} {
		m, out, in := sz[0], sz[1], sz[2]
		src, full := randomNF4(r, out, in, 64)
		for _, trans := range []bool{true, false} {
			k, n := in, out
			if !trans {
				k, n = out, in
			}
			a := make([]float32, m*k)
			for i := range a {
				a[i] = float32(r.NormFloat64())
			}
			got := make([]float32, m*n)
			want := make([]float32, m*n)
			s := src
			s.Trans = trans
			SgemmSource(false, m, n, k, 1, a, k, s, 0, got, n)
			ldb := in
			GemmRef(false, trans, m, n, k, 1, a, k, full, ldb, 0, want, n)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%v trans=%v: c[%d] = %g, want %g", sz, trans, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDequantNF4BlockImpls runs every implementation against the reference
// at sizes around the 16-byte SIMD group, unaligned offsets and NaN guards.
func TestDequantNF4BlockImpls(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	defer SetImpl(Best())
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1024} {
			for off := 0; off < 4; off++ {
				buf := make([]byte, n+off)
				for i := range buf {
					buf[i] = byte(r.UintN(256))
				}
				packed := buf[off:]
				want := make([]float32, 2*n)
				DequantNF4BlockRef(want, packed, 0.37)
				got := make([]float32, 2*n+off+2)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				DequantNF4Block(got[off+1:off+1+2*n], packed, 0.37)
				for i := range want {
					if got[off+1+i] != want[i] {
						t.Fatalf("%s n=%d off=%d: [%d] = %g, want %g", impl, n, off, i, got[off+1+i], want[i])
					}
				}
				if !math.IsNaN(float64(got[off])) || !math.IsNaN(float64(got[off+1+2*n])) {
					t.Fatalf("%s n=%d off=%d: wrote outside dst", impl, n, off)
				}
			}
		}
	}
}

func BenchmarkDequantNF4(b *testing.B) {
	packed := make([]byte, 4096)
	for i := range packed {
		packed[i] = byte(i * 37)
	}
	dst := make([]float32, 2*len(packed))
	for _, impl := range Available() {
		b.Run(string(impl), func(b *testing.B) {
			if err := SetImpl(impl); err != nil {
				b.Fatal(err)
			}
			defer SetImpl(Best())
			b.SetBytes(int64(len(dst) * 4))
			for i := 0; i < b.N; i++ {
				DequantNF4Block(dst, packed, 0.5)
			}
		})
	}
}

// BenchmarkNF4GEMM times the two QLoRA products of a SmolLM2-135M MLP
// projection (576→1536) for 512 tokens with the weight in NF4: the forward
// y = x·Wᵀ (Trans) and the backward dx = g·W.
func BenchmarkNF4GEMM(b *testing.B) {
	defer SetThreads(Threads())
	SetThreads(1)
	const M, in, out, bs = 512, 576, 1536, 64
	packed := make([]byte, out*in/2)
	absmax := make([]float32, out*in/bs)
	for i := range packed {
		packed[i] = byte(i * 37)
	}
	for i := range absmax {
		absmax[i] = 0.01 + float32(i%7)*0.001
	}
	x, g := make([]float32, M*in), make([]float32, M*out)
	y, dx := make([]float32, M*out), make([]float32, M*in)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"forward_xWt", func() {
			SgemmSource(false, M, out, in, 1, x, in, NF4Source{Packed: packed, Absmax: absmax, BlockSize: bs, Rows: out, Cols: in, Trans: true}, 0, y, out)
		}},
		{"backward_gW", func() {
			SgemmSource(false, M, in, out, 1, g, out, NF4Source{Packed: packed, Absmax: absmax, BlockSize: bs, Rows: out, Cols: in}, 0, dx, in)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.f()
			}
			b.ReportMetric(2*M*in*out*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
