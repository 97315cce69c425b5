package cudabackend

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// bf16AttnCase is one attention call: its sizes, its masks (built per
// backend from host ids) and the kernel family it must run on, so each
// family is known to be covered.
type bf16AttnCase struct {
	name                 string
	B, T, S, Hq, Hkv, D  int
	causal               bool
	window, queryOffset  int
	keyMask, segments    []int64 // [B,S] or nil
	flash                bool    // run on the backend that forces the flash kernels
	want                 attnFamily
	softcap              float32
	keyMaskDT, segmentDT tensor.DType
}

// TestBF16Attention: Attention and AttentionBackward on BF16 q, k, v, out,
// dout, dq, dk, dv give, bit for bit, the same backend's F32 call on the
// bf16 values widened with its out, dq, dk, dv rounded to bf16 (to nearest
// even, half.F32ToBF16), and its lse unchanged. Exact equality is the bound
// and not a tolerance: the BF16 call runs the bf16 instantiation of the
// kernel template the F32 call runs (the family is chosen from the shape
// only), which widens every bf16 it loads to float32 (exact) and then does
// the float32 call's arithmetic in the same order; none of the three
// families uses atomics, so their float32 results are deterministic; and
// the kernels' bf16 stores and the host's rounding are both round to
// nearest even. One bf16 ulp of difference would mean an intermediate kept
// in bf16, a second rounding or a different kernel. Cases: causal on the tiled kernels (GQA, key padding,
// ragged T), packed documents with key padding on the warp-per-row kernels
// at a head size only they take (72), a sliding window with a KV-cache
// offset (S ≠ T), and the flash kernels (D = 64) with causal, window, packed
// documents, padding and GQA together, ragged T.
func TestBF16Attention(t *testing.T) {
	simt := open(t, Options{})
	flash := open(t, Options{BF16MatMul: true, AttentionKernel: AttentionFlash})
	padded := func(B, S, pad int) []int64 {
		m := make([]int64, B*S)
		for i := range m {
			m[i] = 1
		}
		for i := range pad { // the last row left-padded
			m[(B-1)*S+i] = 0
		}
		return m
	}
	docs := func(B, S, len int) []int64 {
		s := make([]int64, B*S)
		for i := range s {
			s[i] = int64(i % S / len)
		}
		return s
	}
	for _, c := range []bf16AttnCase{
		{name: "causal/tiled/gqa/pad", B: 2, T: 37, S: 37, Hq: 4, Hkv: 2, D: 32, causal: true,
			keyMask: padded(2, 37, 3), keyMaskDT: tensor.I64, want: famTiled},
		{name: "segments/masked/d72/pad", B: 2, T: 29, S: 29, Hq: 2, Hkv: 1, D: 72, causal: true,
			keyMask: padded(2, 29, 2), segments: docs(2, 29, 11), keyMaskDT: tensor.F32, segmentDT: tensor.I32, want: famMasked},
		{name: "window/masked/kvcache/gqa", B: 1, T: 7, S: 26, Hq: 6, Hkv: 2, D: 40, causal: true, window: 9, queryOffset: 19,
			want: famMasked},
		{name: "window/masked/noncausal/softcap", B: 2, T: 19, S: 19, Hq: 2, Hkv: 2, D: 24, window: 5, softcap: 30,
			keyMask: padded(2, 19, 4), keyMaskDT: tensor.I32, want: famMasked},
		{name: "flash/d64/window/segments/pad/gqa", B: 2, T: 45, S: 45, Hq: 4, Hkv: 2, D: 64, causal: true, window: 13,
			keyMask: padded(2, 45, 5), segments: docs(2, 45, 17), keyMaskDT: tensor.I64, segmentDT: tensor.I64, flash: true, want: famFlash},
		{name: "flash/d64/causal", B: 1, T: 33, S: 33, Hq: 2, Hkv: 1, D: 64, causal: true, flash: true, want: famFlash},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := simt
			if c.flash {
				b = flash
			}
			bf16AttentionCase(t, b, c)
		})
	}
}

func bf16AttentionCase(t *testing.T, b *Backend, c bf16AttnCase) {
	r := rand.New(rand.NewPCG(uint64(c.T), uint64(c.D)))
	// Inputs as bf16 bit patterns; the F32 reference gets them widened.
	bits := func(n int) []uint16 {
		u := make([]uint16, n)
		for i := range u {
			u[i] = tensor.F32ToBF16(float32(r.NormFloat64()))
		}
		return u
	}
	widen := func(u []uint16) []float32 {
		f := make([]float32, len(u))
		for i, x := range u {
			f[i] = tensor.BF16ToF32(x)
		}
		return f
	}
	nq, nk := c.B*c.T*c.Hq*c.D, c.B*c.S*c.Hkv*c.D
	qb, kb, vb, dob := bits(nq), bits(nk), bits(nk), bits(nq)
	qs, ks := []int{c.B, c.T, c.Hq, c.D}, []int{c.B, c.S, c.Hkv, c.D}

	mask := func(ids []int64, dt tensor.DType) *tensor.Tensor {
		if ids == nil {
			return nil
		}
		switch dt {
		case tensor.I32:
			v := make([]int32, len(ids))
			for i, x := range ids {
				v[i] = int32(x)
			}
			return tensor.FromHost(b, dt, v, c.B, c.S)
		case tensor.F32:
			v := make([]float32, len(ids))
			for i, x := range ids {
				v[i] = float32(x)
			}
			return tensor.FromHost(b, dt, v, c.B, c.S)
		}
		return tensor.FromHost(b, tensor.I64, append([]int64(nil), ids...), c.B, c.S)
	}
	p := tensor.AttentionParams{Causal: c.causal, Window: c.window, QueryOffset: c.queryOffset, Softcap: c.softcap,
		Scale:   float32(1 / math.Sqrt(float64(c.D))),
		KeyMask: mask(c.keyMask, c.keyMaskDT), Segments: mask(c.segments, c.segmentDT)}

	d := attnDims{B: c.B, T: c.T, S: c.S, Hq: c.Hq, Hkv: c.Hkv, D: c.D}
	if fam, err := b.family(attnMaskShape(d, p), p, d); err != nil || fam != c.want {
		t.Fatalf("family %v, %v; the case is meant for %v", fam, err, c.want)
	}

	nan := math.NaN()
	// F32 reference on the widened values.
	q32 := tensor.FromHost(b, tensor.F32, widen(qb), qs...)
	k32 := tensor.FromHost(b, tensor.F32, widen(kb), ks...)
	v32 := tensor.FromHost(b, tensor.F32, widen(vb), ks...)
	do32 := tensor.FromHost(b, tensor.F32, widen(dob), qs...)
	out32, lse32 := tensor.Full(b, tensor.F32, nan, qs...), tensor.Full(b, tensor.F32, nan, c.B, c.Hq, c.T)
	if err := b.Attention(out32, lse32, q32, k32, v32, p); err != nil {
		t.Fatal(err)
	}
	dq32, dk32, dv32 := tensor.Full(b, tensor.F32, nan, qs...), tensor.Full(b, tensor.F32, nan, ks...), tensor.Full(b, tensor.F32, nan, ks...)
	// The reference backward reads the F32 forward's out rounded to bf16,
	// as the BF16 backward reads its BF16 out.
	outR := tensor.FromHost(b, tensor.F32, widen(roundBF16(out32.F32())), qs...)
	if err := b.AttentionBackward(dq32, dk32, dv32, do32, outR, lse32, q32, k32, v32, p); err != nil {
		t.Fatal(err)
	}

	// The BF16 call, every output poisoned with NaN first.
	q := tensor.FromHost(b, tensor.BF16, qb, qs...)
	k := tensor.FromHost(b, tensor.BF16, kb, ks...)
	v := tensor.FromHost(b, tensor.BF16, vb, ks...)
	do := tensor.FromHost(b, tensor.BF16, dob, qs...)
	out, lse := tensor.Full(b, tensor.BF16, nan, qs...), tensor.Full(b, tensor.F32, nan, c.B, c.Hq, c.T)
	if err := b.Attention(out, lse, q, k, v, p); err != nil {
		t.Fatal(err)
	}
	dq, dk, dv := tensor.Full(b, tensor.BF16, nan, qs...), tensor.Full(b, tensor.BF16, nan, ks...), tensor.Full(b, tensor.BF16, nan, ks...)
	if err := b.AttentionBackward(dq, dk, dv, do, out, lse, q, k, v, p); err != nil {
		t.Fatal(err)
	}

	sameBits(t, "lse", lse.F32(), lse32.F32())
	for _, o := range []struct {
		name      string
		got, want *tensor.Tensor
	}{{"out", out, out32}, {"dq", dq, dq32}, {"dk", dk, dk32}, {"dv", dv, dv32}} {
		got := make([]uint16, o.got.Numel())
		if err := b.ToHost(o.got, got); err != nil {
			t.Fatal(err)
		}
		want := roundBF16(o.want.F32())
		bad, nonzero, maxULP := 0, 0, 0
		for i := range want {
			if got[i]&0x7fff != 0 {
				nonzero++
			}
			if u := ulpsBF16(got[i], want[i]); u != 0 {
				maxULP = max(maxULP, u)
				if bad < 5 {
					t.Errorf("%s[%d] = %#04x (%g), want %#04x (%g)", o.name, i, got[i], tensor.BF16ToF32(got[i]), want[i], tensor.BF16ToF32(want[i]))
				}
				bad++
			}
		}
		t.Logf("%s: %d of %d elements differ from the F32 reference rounded (largest %d bf16 ulps); %d nonzero", o.name, bad, len(want), maxULP, nonzero)
		if bad > 0 {
			t.Errorf("%s: %d of %d elements differ (want bit-for-bit equality)", o.name, bad, len(want))
		}
		// All-zero results would pass a comparison against a broken
		// reference that also wrote zeros.
		if nonzero < len(want)/2 {
			t.Errorf("%s: only %d of %d elements nonzero", o.name, nonzero, len(want))
		}
	}
}

// attnMaskShape is the kernels' shape for d and p, for family; the mask
// pointers do not take part in the choice.
func attnMaskShape(d attnDims, p tensor.AttentionParams) cuda.MaskedAttention {
	return attnMasks{}.shape(d, p)
}

// TestBF16AttentionMixed: activations of mixed dtypes, and an lse that is
// not F32, are refused with ErrUnsupported naming the op and the dtypes,
// before any kernel runs.
func TestBF16AttentionMixed(t *testing.T) {
	b := open(t, Options{})
	const B, T, H, D = 1, 4, 2, 32
	mk := func(dt tensor.DType) *tensor.Tensor { return tensor.New(b, dt, B, T, H, D) }
	lse := tensor.New(b, tensor.F32, B, H, T)
	p := tensor.AttentionParams{Causal: true, Scale: 0.125}
	f, h := tensor.F32, tensor.BF16
	for _, c := range []struct {
		q, k, v, out tensor.DType
		want         string
	}{
		{h, f, f, f, "BF16, F32, F32, F32"},
		{f, f, h, f, "F32, F32, BF16, F32"},
		{h, h, h, f, "BF16, BF16, BF16, F32"},
	} {
		err := b.Attention(mk(c.out), lse, mk(c.q), mk(c.k), mk(c.v), p)
		if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "Attention on "+c.want) {
			t.Errorf("Attention q %v k %v v %v out %v: %v", c.q, c.k, c.v, c.out, err)
		}
	}
	if err := b.Attention(mk(h), tensor.New(b, tensor.BF16, B, H, T), mk(h), mk(h), mk(h), p); !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "lse BF16") {
		t.Errorf("BF16 lse: %v", err)
	}
	// The backward: one F32 gradient among BF16 activations.
	err := b.AttentionBackward(mk(h), mk(f), mk(h), mk(h), mk(h), lse, mk(h), mk(h), mk(h), p)
	if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "AttentionBackward on BF16, BF16, BF16, BF16, BF16, BF16, F32, BF16") {
		t.Errorf("AttentionBackward with an F32 dk: %v", err)
	}

}
