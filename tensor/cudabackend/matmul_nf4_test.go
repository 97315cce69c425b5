package cudabackend

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestNF4MatMulBF16 checks MatMul with an NF4 weight in BF16MatMul mode,
// where y = x·Wᵀ runs on the GEMM that dequantizes W in its tile loader.
// N, K are ragged against the 128x128x32 tile and K (72) is not a multiple
// of the 64-element block, so blocks span two rows.
//   - Against the same product with W dequantized to a bf16 tensor first
//     (the scratch path's kernel): bit-identical, since both kernels hold the
//     same bf16 tiles and run the same mma sequence.
//   - Against the CPU backend's float32 product: BF16Tol's 1e-2 normalised
//     (x and W each rounded to bf16 once, 2⁻⁸ relative).
func TestNF4MatMulBF16(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(7, 8))
	const N, K, bs = 130, 72, 64 // 9360 elements: 147 blocks, the last partial
	d := randNF4(r, N, K, bs)
	wg, wc := tensor.FromNF4(b, d, N, K), tensor.FromNF4(cpu, d, N, K)
	av := randF32(r, 3*45*K)
	ag := tensor.FromHost(b, tensor.F32, append([]float32(nil), av...), 3, 45, K)
	ac := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), av...), 3, 45, K)
	got := tensor.MatMul(ag, wg, false, true).F32()
	viaBF16 := tensor.MatMul(ag, wg.To(tensor.BF16), false, true).F32()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(viaBF16[i]) {
			t.Fatalf("NF4 GEMM element %d is %g, the bf16 GEMM on the dequantized weight gives %g", i, got[i], viaBF16[i])
		}
	}
	e := relErr(got, tensor.MatMul(ac, wc, false, true).F32())
	t.Logf("NF4 matmul (bf16 mode) [3,45,%d]x[%d,%d]^T: relative error %.3g against the CPU", K, N, K, e)
	if !(e <= BF16Tol.MatMul) {
		t.Errorf("NF4 matmul (bf16 mode): relative error %.3g > %g", e, BF16Tol.MatMul)
	}
}

// randNF4 returns a random NF4 weight [rows, cols] (absmax in [0.1, 1.1)).
func randNF4(r *rand.Rand, rows, cols, bs int) tensor.NF4Data {
	n := rows * cols
	d := tensor.NF4Data{Packed: make([]byte, (n+1)/2), Absmax: make([]float32, (n+bs-1)/bs), BlockSize: bs, Len: n}
	for i := range d.Packed {
		d.Packed[i] = byte(r.IntN(256))
	}
	for i := range d.Absmax {
		d.Absmax[i] = float32(r.Float64() + 0.1)
	}
	return d
}

// TestNF4MatMulBF16Backward checks the backward's dx = dy·W with an NF4 W
// [out, in] in BF16MatMul mode, the GEMM that dequantizes W's tiles in its
// nn-orientation loader. in = 72 (a multiple of 8, not of the 64-element
// block: blocks span two rows) and 75 (odd: rows start mid-byte, the
// loader's element path); out = 130 is ragged against the 128 tile.
//   - Against the dequantize-then-GEMM product (W to a bf16 tensor by
//     nf4_dequant, then the bf16 nn GEMM): bit-identical, as in the
//     forward's test, since both kernels hold the same bf16 tiles (code·absmax
//     in float32, rounded to nearest even, zero outside W) and run the same
//     mma sequence.
//   - Against the CPU backend's float32 product: BF16Tol's 1e-2 normalised.
func TestNF4MatMulBF16Backward(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(9, 10))
	for _, in := range []int{72, 75} {
		const out, bs = 130, 64
		d := randNF4(r, out, in, bs)
		wg, wc := tensor.FromNF4(b, d, out, in), tensor.FromNF4(cpu, d, out, in)
		gv := randF32(r, 3*45*out)
		gg := tensor.FromHost(b, tensor.F32, append([]float32(nil), gv...), 3, 45, out)
		gc := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), gv...), 3, 45, out)
		got := tensor.MatMul(gg, wg, false, false).F32()
		viaBF16 := tensor.MatMul(gg, wg.To(tensor.BF16), false, false).F32()
		if len(got) != 3*45*in {
			t.Fatalf("dx has %d elements, want %d", len(got), 3*45*in)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(viaBF16[i]) {
				t.Fatalf("in=%d: NF4 nn GEMM element %d is %g, the bf16 GEMM on the dequantized weight gives %g", in, i, got[i], viaBF16[i])
			}
		}
		e := relErr(got, tensor.MatMul(gc, wc, false, false).F32())
		t.Logf("NF4 backward (bf16 mode) [3,45,%d]x[%d,%d]: relative error %.3g against the CPU", out, out, in, e)
		if !(e <= BF16Tol.MatMul) {
			t.Errorf("NF4 backward (bf16 mode), in=%d: relative error %.3g > %g", in, e, BF16Tol.MatMul)
		}
	}
}

// TestNF4MatMulBF16NoWeightScratch checks that neither the forward
// y = x·Wᵀ nor the backward dx = dy·W of an NF4 weight allocates a
// W-sized scratch in BF16MatMul mode: the allocator's peak rises by the
// activation's bf16 copy only (32 tokens: 16 KiB at most), far below the
// 256 KiB a bf16 copy of W [512, 256] would take (what the dequantize-then-
// GEMM path allocated for the backward before).
func TestNF4MatMulBF16NoWeightScratch(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	r := rand.New(rand.NewPCG(11, 12))
	const tokens, out, in, bs = 32, 512, 256, 64
	w := tensor.FromNF4(b, randNF4(r, out, in, bs), out, in)
	cases := []struct {
		name   string
		x, dst *tensor.Tensor
		transB bool
		xBF16  int
	}{
		{"forward y = x·Wᵀ", tensor.FromHost(b, tensor.F32, randF32(r, tokens*in), tokens, in), tensor.New(b, tensor.F32, tokens, out), true, tokens * in * 2},
		{"backward dx = dy·W", tensor.FromHost(b, tensor.F32, randF32(r, tokens*out), tokens, out), tensor.New(b, tensor.F32, tokens, in), false, tokens * out * 2},
	}
	wBF16 := int64(out * in * 2)
	for _, c := range cases {
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		b.alloc.ResetPeak()
		live := b.Stats().Live
		if err := b.MatMul(c.dst, c.x, w, false, c.transB, 1, 0); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		rise := b.Stats().Peak - live
		t.Logf("%s: peak rose by %d bytes (x in bf16: %d; W in bf16 would be %d)", c.name, rise, c.xBF16, wBF16)
		if rise >= wBF16 {
			t.Errorf("%s: peak device memory rose by %d bytes, at least a bf16 copy of W (%d): a W-sized scratch was allocated", c.name, rise, wBF16)
		}
		for i, v := range c.dst.F32() {
			if v != v {
				t.Fatalf("%s: output element %d is NaN", c.name, i)
			}
		}
	}
}

// randNF4DQ returns a random double-quantized NF4 weight [rows, cols]
// (bitsandbytes' nested blocks of 256, and of 3 when small is set, so that
// a small weight has several) with its Absmax expanded as NF4Nested
// documents: the float32 product, then the float32 sum.
func randNF4DQ(r *rand.Rand, rows, cols, bs, nbs int) tensor.NF4Data {
	d := randNF4(r, rows, cols, bs)
	nb := len(d.Absmax)
	q := &tensor.NF4Nested{QAbsmax: make([]uint8, nb), NestedAbsmax: make([]float32, (nb+nbs-1)/nbs),
		NestedCode: make([]float32, 256), NestedBlockSize: nbs, Offset: float32(r.Float64()*0.5 + 0.25)}
	for i := range q.QAbsmax {
		q.QAbsmax[i] = uint8(r.IntN(256))
	}
	for i := range q.NestedAbsmax {
		q.NestedAbsmax[i] = float32(r.Float64()*0.5 + 0.01)
	}
	for i := range q.NestedCode {
		q.NestedCode[i] = float32(r.Float64()*2 - 1)
	}
	for b := range d.Absmax {
		p := float32(q.NestedCode[q.QAbsmax[b]] * q.NestedAbsmax[b/nbs])
		d.Absmax[b] = float32(p + q.Offset)
	}
	d.Nested = q
	return d
}

// TestNF4DoubleQuant checks an NF4 weight whose double-quantized scales
// stay so on the device (the kernels decode them): every product and the
// conversion are bit-identical to the same weight uploaded with its
// float32 scales (the decode rounds as the host's expansion does), in
// bf16 mode (the fused forward and backward GEMMs) and in float32 mode
// (nf4dq_dequant, then the SIMT GEMM); the conversion also equals the
// CPU's. [130, 75]: ragged rows, odd row length (blocks span rows, rows
// start mid-byte), 153 blocks in 52 nested blocks of 3.
func TestNF4DoubleQuant(t *testing.T) {
	bf, f32 := open(t, Options{BF16MatMul: true}), open(t, Options{})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(13, 14))
	const out, in, bs = 130, 75, 64
	d := randNF4DQ(r, out, in, bs, 3)
	plain := d
	plain.Nested = nil
	x := randF32(r, 2*9*in)
	g := randF32(r, 2*9*out)
	for _, b := range []*Backend{bf, f32} {
		wq, wp := tensor.FromNF4(b, d, out, in), tensor.FromNF4(b, plain, out, in)
		xs := tensor.FromHost(b, tensor.F32, append([]float32(nil), x...), 2, 9, in)
		gs := tensor.FromHost(b, tensor.F32, append([]float32(nil), g...), 2, 9, out)
		for _, c := range []struct {
			name   string
			a      *tensor.Tensor
			transB bool
		}{{"forward x·Wᵀ", xs, true}, {"backward dy·W", gs, false}} {
			got := tensor.MatMul(c.a, wq, false, c.transB).F32()
			want := tensor.MatMul(c.a, wp, false, c.transB).F32()
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("bf16 mode %v, %s: element %d is %g with double-quantized scales, %g with float32 ones", b.opt.BF16MatMul, c.name, i, got[i], want[i])
				}
			}
		}
		got, want := wq.To(tensor.F32).F32(), tensor.FromNF4(cpu, d, out, in).To(tensor.F32).F32()
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("bf16 mode %v: dequantized element %d is %g, the CPU's %g", b.opt.BF16MatMul, i, got[i], want[i])
			}
		}
	}
}

// TestNF4DoubleQuantDeviceBytes checks that a double-quantized weight's
// scales take 1 byte per block on the device (plus a float32 per 256 blocks
// and the 1 KB code book), not the float32 absmax's 4: uploading [1024, 512]
// (8192 blocks) takes at least 2 bytes per block less than with float32
// scales (3 less before the allocator's size classes round). Before the
// kernels decoded the scales, both uploads took the same.
func TestNF4DoubleQuantDeviceBytes(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	r := rand.New(rand.NewPCG(15, 16))
	const out, in, bs = 1024, 512, 64
	d := randNF4DQ(r, out, in, bs, 256)
	plain := d
	plain.Nested = nil
	upload := func(d tensor.NF4Data) (int64, *tensor.Tensor) {
		b.collect()
		live := b.Stats().Live
		w := tensor.FromNF4(b, d, out, in)
		return b.Stats().Live - live, w
	}
	dq, wq := upload(d)
	fp, wp := upload(plain)
	nb := int64(len(d.Absmax))
	t.Logf("device bytes of [%d, %d] NF4: %d with double-quantized scales, %d with float32 ones (%d blocks)", out, in, dq, fp, nb)
	if dq > fp-2*nb {
		t.Errorf("double-quantized upload took %d device bytes, float32 scales %d: want at least %d less", dq, fp, 2*nb)
	}
	runtime.KeepAlive(wq) // not collected while the second upload is measured
	runtime.KeepAlive(wp)
}
