package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/kernels/asm"
)

// TestCPUBF16MatMul: CPUBF16's MatMul sends float32, bf16 and NF4 weights
// (the model's x·Wᵀ and the backward's g·W) to the bf16 GEMM, bit for bit
// what asm.GemmBF16Dot* computes, batched or not; the default backend's
// results differ (they are float32 products), and float64 is untouched.
func TestCPUBF16MatMul(t *testing.T) {
	const m, k, n = 40, 70, 48
	rng := rand.New(rand.NewPCG(1, 2))
	randF := func(n int) []float32 { return normals(rng, n) }
	xs := randF(2 * m * k)
	wf := randF(n * k)
	wb := make([]uint16, n*k)
	asm.F32ToBF16(wb, wf)
	packed := make([]byte, n*k/2)
	for i := range packed {
		packed[i] = byte(rng.IntN(256))
	}
	absmax := randF((n*k + 63) / 64)
	nf4 := NF4Data{Packed: packed, Absmax: absmax, BlockSize: 64, Len: n * k}

	bf, def := CPUBF16(), CPUDefault()
	if !bf.BF16MatMul() || def.BF16MatMul() {
		t.Fatal("BF16MatMul: CPUBF16 must say true, CPUDefault false")
	}
	weights := map[string]func(b Backend) *Tensor{
		"f32":  func(b Backend) *Tensor { return FromHost(b, F32, wf, n, k) },
		"bf16": func(b Backend) *Tensor { return FromHost(b, BF16, wb, n, k) },
		"nf4":  func(b Backend) *Tensor { return FromNF4(b, nf4, n, k) },
	}
	for name, w := range weights {
		// x (2×m×k) · Wᵀ, the two batches sharing W: one tall product.
		x := FromHost(bf, F32, xs, 2, m, k)
		got := New(bf, F32, 2, m, n)
		if err := bf.MatMul(got, x, w(bf), false, true, 1, 0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := make([]float32, 2*m*n)
		switch name {
		case "f32":
			asm.GemmBF16Dot(false, true, 2*m, n, k, 1, xs, k, wf, k, 0, want, n)
		case "bf16":
			asm.GemmBF16DotB(false, true, 2*m, n, k, 1, xs, k, wb, k, 0, want, n)
		case "nf4":
			src := asm.NF4Source{Packed: packed, Absmax: absmax, BlockSize: 64, Rows: n, Cols: k, Trans: true}
			asm.GemmBF16DotSource(false, 2*m, n, k, 1, xs, k, src, 0, want, n)
		}
		f32 := New(def, F32, 2, m, n)
		if err := def.MatMul(f32, FromHost(def, F32, xs, 2, m, k), w(def), false, true, 1, 0); err != nil {
			t.Fatal(err)
		}
		differ := false
		for i, v := range got.F32() {
			if math.Float32bits(v) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d = %v, the bf16 GEMM gives %v", name, i, v, want[i])
			}
			differ = differ || v != f32.F32()[i]
		}
		if !differ {
			t.Errorf("%s: CPUBF16 equals the float32 backend: the operands were not rounded", name)
		}
	}
	// float64 stays the reference loop on either backend.
	a64 := FromHost(bf, F64, []float64{1, 2, 3, 4}, 2, 2)
	c64 := New(bf, F64, 2, 2)
	if err := bf.MatMul(c64, a64, a64, false, false, 1, 0); err != nil {
		t.Fatal(err)
	}
	if got := c64.F64(); got[0] != 7 || got[3] != 22 {
		t.Errorf("float64 on CPUBF16: %v, want [7 10 15 22]", got)
	}
}

// TestCPUBF16Attention: on CPUBF16 the attention kernels' products (Q·Kᵀ,
// P·V and the backward's four) round their operands to bf16, so the
// forward and every gradient move off the float32 backend's, by bf16
// noise: within 2e-2 relative (Frobenius; each operand rounding is at most
// 2⁻⁹ relative and the softmax and sums stay float32), and by more than
// 1e-5, which float32 reordering alone never reaches. Shapes put every
// product on the bf16 kernel (head size 64, 96 queries: m, n ≥ 32): GQA,
// causal, and one sliding-window case.
func TestCPUBF16Attention(t *testing.T) {
	const B, T, Hq, Hkv, D = 1, 96, 4, 2, 64
	rng := rand.New(rand.NewPCG(3, 9))
	randF := func(n int) []float32 { return normals(rng, n) }
	q, k, v, dout := randF(B*T*Hq*D), randF(B*T*Hkv*D), randF(B*T*Hkv*D), randF(B*T*Hq*D)
	relFro := func(a, b []float32) float64 {
		var num, den float64
		for i := range a {
			d := float64(a[i]) - float64(b[i])
			num += d * d
			den += float64(b[i]) * float64(b[i])
		}
		return math.Sqrt(num / den)
	}
	for _, p := range []AttentionParams{{Scale: 0.125, Causal: true}, {Scale: 0.125, Causal: true, Window: 40}} {
		run := func(be *CPUBackend) [][]float32 {
			qt, kt, vt := FromHost(be, F32, q, B, T, Hq, D), FromHost(be, F32, k, B, T, Hkv, D), FromHost(be, F32, v, B, T, Hkv, D)
			out, lse := New(be, F32, B, T, Hq, D), New(be, F32, B, Hq, T)
			if err := be.Attention(out, lse, qt, kt, vt, p); err != nil {
				t.Fatal(err)
			}
			dq, dk, dv := New(be, F32, B, T, Hq, D), New(be, F32, B, T, Hkv, D), New(be, F32, B, T, Hkv, D)
			if err := be.AttentionBackward(dq, dk, dv, FromHost(be, F32, dout, B, T, Hq, D), out, lse, qt, kt, vt, p); err != nil {
				t.Fatal(err)
			}
			return [][]float32{out.F32(), dq.F32(), dk.F32(), dv.F32()}
		}
		want, got := run(CPUDefault()), run(CPUBF16())
		for i, name := range []string{"out", "dq", "dk", "dv"} {
			e := relFro(got[i], want[i])
			t.Logf("window %d: %s moves %.3g relative", p.Window, name, e)
			if !(e <= 2e-2) || !(e > 1e-5) {
				t.Errorf("window %d: bf16 attention %s is %.3g relative from float32's, want in (1e-5, 2e-2]", p.Window, name, e)
			}
		}
	}
}

// normals is n standard normal float32 values from r.
func normals(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}
