package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// rnd rounds x to bf16 (nearest even) and back: what GemmBF16Dot does to
// every operand before it multiplies.
func rnd(x float32) float64 { return float64(half.BF16ToF32(half.F32ToBF16(x))) }

// dotRef is the float64 product of the bf16-rounded operands, with the
// bound on float32 summation error used by the tests: each |c - ref| may be
// at most (k+4)·2⁻²³·Σ|a·b| (a float32 sum of k exact products, plus the
// epilogue's alpha·s + beta·c). A kernel that drops, swaps or misrounds one
// half of a pair misses by a product's size, ~1/k of the sum, far above it.
func dotRef(transA bool, m, n, k int, alpha float32, a []float32, lda int, opB func(p, j int) float32, beta float32, c0 []float32, ldc int) (ref, bound []float64) {
	ref, bound = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				prod := rnd(av) * rnd(opB(p, j))
				s += prod
				abs += math.Abs(prod)
			}
			r := float64(alpha) * s
			abs *= math.Abs(float64(alpha))
			if beta != 0 {
				r += float64(beta) * float64(c0[i*ldc+j])
				abs += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
			}
			ref[i*n+j] = r
			bound[i*n+j] = float64(k+4)*0x1p-23*abs + 1e-30
		}
	}
	return ref, bound
}

func randFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// TestGemmBF16DotMatchesReference runs every kernel this CPU has (the
// AVX512_BF16 one where present, and the Go loops) over ragged shapes —
// edge tiles in both directions, odd k (a half-empty last pair), k blocks
// that split, m and n below and above dotMinDim — with float32, bf16 and NF4 B
// in both layouts, alpha and beta, against dotRef.
func TestGemmBF16DotMatchesReference(t *testing.T) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	defer SetThreads(Threads())
	type shape struct{ m, n, k int }
	shapes := []shape{{32, 32, 2}, {37, 33, 1}, {48, 64, 3}, {100, 45, 513}, {130, 70, 600}, {12, 40, 65}, {100, 31, 513}, {64, 1030, 64}}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, s := range shapes {
		for _, transA := range []bool{false, true} {
			for _, src := range []string{"f32", "f32T", "f32T-serial", "bf16", "bf16T", "bf16T-odd", "nf4", "nf4T"} {
				name := fmt.Sprintf("%dx%dx%d/transA=%v/%s", s.m, s.n, s.k, transA, src)
				checkBF16Dot(t, rng, name, s.m, s.n, s.k, transA, src)
			}
		}
	}
}

// checkBF16Dot builds one product's operands and reference, then runs it
// on every implementation this CPU has, on one goroutine and, for the
// fastest implementation, split over two goroutines and over six (a grid
// of rectangles where the shape allows: 3×2 at 130×70 and 100×45).
func checkBF16Dot(t *testing.T, rng *rand.Rand, name string, m, n, k int, transA bool, src string) {
	t.Helper()
	lda := k + 3
	if transA {
		lda = m + 5
	}
	rowsA := m
	if transA {
		rowsA = k
	}
	a := randFloats(rng, rowsA*lda)
	ldc := n + 2
	c0 := randFloats(rng, m*ldc)
	alpha, beta := float32(0.75), float32(-0.5)

	var opB func(p, j int) float32
	var run func(c []float32)
	switch src {
	case "f32", "f32T", "f32T-serial":
		trans := src != "f32"
		ldb := n + 1
		if trans {
			ldb = k + 1
		}
		b := randFloats(rng, max(k, n)*ldb)
		opB = func(p, j int) float32 {
			if trans {
				return b[j*ldb+p]
			}
			return b[p*ldb+j]
		}
		run = func(c []float32) { GemmBF16Dot(transA, trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) }
		if src == "f32T-serial" {
			run = func(c []float32) { GemmBF16DotSerial(transA, trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) }
		}
	case "bf16", "bf16T", "bf16T-odd":
		// bf16T's even rows (for even k) take packPairs' direct path,
		// bf16T-odd's the float32 one.
		trans := src != "bf16"
		ldb := n + 1
		if trans {
			ldb = k + 2
			if src == "bf16T-odd" {
				ldb = k + 1
			}
		}
		b := make([]uint16, max(k, n)*ldb)
		for i := range b {
			b[i] = half.F32ToBF16(float32(rng.NormFloat64()))
		}
		opB = func(p, j int) float32 {
			if trans {
				return half.BF16ToF32(b[j*ldb+p])
			}
			return half.BF16ToF32(b[p*ldb+j])
		}
		run = func(c []float32) { GemmBF16DotB(transA, trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) }
	case "nf4", "nf4T":
		// A weight of rows×cols quantized in blocks of 64: op(B) = W or Wᵀ.
		trans := src == "nf4T"
		rows, cols := k, n
		if trans {
			rows, cols = n, k
		}
		const bs = 64
		nb := (rows*cols + bs - 1) / bs
		packed := make([]byte, nb*bs/2)
		for i := range packed {
			packed[i] = byte(rng.IntN(256))
		}
		absmax := make([]float32, nb)
		for i := range absmax {
			absmax[i] = 0.5 + rng.Float32()
		}
		w := make([]float32, nb*bs)
		DequantNF4(w, packed, absmax, bs, 0)
		opB = func(p, j int) float32 {
			if trans {
				return w[j*cols+p]
			}
			return w[p*cols+j]
		}
		s := NF4Source{Packed: packed, Absmax: absmax, BlockSize: bs, Rows: rows, Cols: cols, Trans: trans}
		run = func(c []float32) { GemmBF16DotSource(transA, m, n, k, alpha, a, lda, s, beta, c, ldc) }
	}

	var ref, bound []float64
	small := m < dotMinDim || n < dotMinDim
	if !small {
		ref, bound = dotRef(transA, m, n, k, alpha, a, lda, opB, beta, c0, ldc)
	}
	impls := Available()
	type config struct {
		impl    Impl
		threads int
	}
	var configs []config
	for _, impl := range impls {
		configs = append(configs, config{impl, 1})
	}
	configs = append(configs, config{impls[len(impls)-1], 2}, config{impls[len(impls)-1], 6})
	for _, cfg := range configs {
		if err := SetImpl(cfg.impl); err != nil {
			t.Fatal(err)
		}
		SetThreads(cfg.threads)
		label := fmt.Sprintf("%s/%dthreads/%s", cfg.impl, cfg.threads, name)
		c := append([]float32(nil), c0...)
		run(c)
		if small {
			// Few rows or columns go to Sgemm in float32: no rounding.
			want := append([]float32(nil), c0...)
			opBm := make([]float32, k*n)
			for p := 0; p < k; p++ {
				for j := 0; j < n; j++ {
					opBm[p*n+j] = opB(p, j)
				}
			}
			Sgemm(transA, false, m, n, k, alpha, a, lda, opBm, n, beta, want, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if d := math.Abs(float64(c[i*ldc+j] - want[i*ldc+j])); d > 1e-4*(1+math.Abs(float64(want[i*ldc+j]))) {
						t.Fatalf("%s: c[%d][%d] = %g, Sgemm gives %g", label, i, j, c[i*ldc+j], want[i*ldc+j])
					}
				}
			}
			continue
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				got := float64(c[i*ldc+j])
				if d := math.Abs(got - ref[i*n+j]); !(d <= bound[i*n+j]) {
					t.Fatalf("%s: c[%d][%d] = %.9g, want %.9g ± %.3g (off by %.3g)", label, i, j, got, ref[i*n+j], bound[i*n+j], d)
				}
			}
			for j := n; j < ldc; j++ {
				if c[i*ldc+j] != c0[i*ldc+j] {
					t.Fatalf("%s: c[%d][%d], outside the n=%d columns, changed", label, i, j, n)
				}
			}
		}
	}
}

// TestGemmBF16DotRoundsOperands: the product is of the bf16-rounded
// operands, not of the float32 ones. With A = 1 + 2⁻¹⁰ (bf16 keeps 7
// mantissa bits, so it rounds to 1) and B = 1 over k = 64, the float32
// product is 64.0625 and the bf16 one exactly 64.
func TestGemmBF16DotRoundsOperands(t *testing.T) {
	const m, n, k = 32, 32, 64
	a := make([]float32, m*k)
	for i := range a {
		a[i] = 1 + 0x1p-10
	}
	b := make([]uint16, k*n)
	for i := range b {
		b[i] = half.F32ToBF16(1)
	}
	c := make([]float32, m*n)
	GemmBF16DotB(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
	for i, v := range c {
		if v != 64 {
			t.Fatalf("c[%d] = %v, want 64 (A rounded to bf16 1.0 before the products)", i, v)
		}
	}
}

// TestGemmBF16DotBeta0IgnoresC: beta == 0 overwrites C without reading it,
// so NaNs already there do not propagate, in full tiles and edge tiles.
func TestGemmBF16DotBeta0IgnoresC(t *testing.T) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		const m, n, k = 40, 45, 10
		rng := rand.New(rand.NewPCG(3, 4))
		a, bf := randFloats(rng, m*k), randFloats(rng, k*n)
		b := make([]uint16, len(bf))
		F32ToBF16(b, bf)
		c := make([]float32, m*n)
		for i := range c {
			c[i] = float32(math.NaN())
		}
		GemmBF16DotB(false, false, m, n, k, 1, a, k, b, n, math.Float32frombits(1<<31), c, n) // beta = -0
		for i, v := range c {
			if math.IsNaN(float64(v)) {
				t.Fatalf("%s: c[%d] is NaN: beta = -0 read C", impl, i)
			}
		}
	}
}

// TestBF16DotFast: the assembly kernel is chosen exactly when the CPU has
// the bf16 instructions (AVX512_BF16, FEAT_BF16) under the implementation
// it is written for (AVX-512, NEON).
func TestBF16DotFast(t *testing.T) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		want := (impl == ImplAVX512 || impl == ImplNEON) && hasBF16Dot
		if BF16DotFast() != want {
			t.Errorf("%s: BF16DotFast() = %v, want %v", impl, BF16DotFast(), want)
		}
	}
	t.Logf("this CPU: bf16 dot-product kernel %v", hasBF16Dot)
}

// TestPairPanelSpecialValues: pairPanel's assembly loop (where this CPU has
// it) rewrites panels in place exactly as the Go loop does, for the panel
// widths the kernels use and ragged ones (a masked last chunk), odd k, and
// values where rounding matters: ties to even both ways, the largest
// float32 (rounds to Inf), infinities, NaNs of every kind (all become the
// quiet NaN 0x7fc0), subnormals and signed zeros.
func TestPairPanelSpecialValues(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1 + 0x1p-8, 1 + 0x3p-8, -(1 + 0x1p-8), 1 + 0x1p-8 + 0x1p-20,
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-130, -0x1p-149,
		math.Float32frombits(0x7f800001), math.Float32frombits(0xffffffff), math.Float32frombits(0x7fc00000), math.Float32frombits(0x7fbfffff)}
	rng := rand.New(rand.NewPCG(5, 6))
	fast := dotFor(Available()[len(Available())-1]) // the fastest implementation
	if fast.pairRows == nil {
		t.Logf("no assembly pairing on this CPU: the Go loop is checked against half.F32ToBF16 only")
	}
	for _, r := range []int{4, 6, 12, 16, 20, 32} {
		for _, kc := range []int{1, 2, 3, 8, 9} {
			p := make([]float32, kc*r)
			for i := range p {
				if rng.IntN(3) == 0 {
					p[i] = special[rng.IntN(len(special))]
				} else {
					p[i] = float32(rng.NormFloat64())
				}
			}
			want := make([]uint32, (kc+1)/2*r)
			for q := range (kc + 1) / 2 {
				for x := range r {
					lo := uint32(half.F32ToBF16(p[2*q*r+x]))
					var hi uint32
					if 2*q+1 < kc {
						hi = uint32(half.F32ToBF16(p[(2*q+1)*r+x]))
					}
					want[q*r+x] = lo | hi<<16
				}
			}
			for _, d := range []*dotGemm{&bf16DotGo, fast} {
				got := append([]float32(nil), p...)
				pairPanel(d, got, kc, r)
				u := pairs(got, len(want))
				for i := range want {
					if u[i] != want[i] {
						t.Fatalf("r=%d kc=%d (assembly %v): slot %d = %#08x, want %#08x", r, kc, d.pairRows != nil, i, u[i], want[i])
					}
				}
			}
		}
	}
}

// TestBF16DotSpeedup: the measurement returns a finite, positive ratio
// (logged; the speed itself is the benchmarks' business: this test runs
// beside other packages' tests).
func TestBF16DotSpeedup(t *testing.T) {
	r := BF16DotSpeedup()
	t.Logf("bf16 products %.2f× float32's on this CPU (fast kernel: %v)", r, BF16DotFast())
	if !(r > 0) || math.IsInf(r, 0) {
		t.Fatalf("BF16DotSpeedup() = %v, want a finite positive ratio", r)
	}
}
