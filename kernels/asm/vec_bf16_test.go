package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bfloat16 conversion: exhaustive widening, rounding on hand-checked
// values, and random bit patterns (NaNs, subnormals, ties included) at
// every size and offset, with guard bands. Both directions are exact, so
// every implementation must equal the reference bit for bit.

func TestBF16ToF32Exhaustive(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		dst := make([]float32, len(src))
		BF16ToF32(dst, src)
		for i, h := range src {
			if got := math.Float32bits(dst[i]); got != uint32(h)<<16 {
				t.Fatalf("bf16 %#04x -> %#08x, want %#08x", h, got, uint32(h)<<16)
			}
		}
	})
}

// Hand-checked roundings (torch.tensor(x).bfloat16() gives the same).
var bf16Cases = []struct {
	f32 uint32
	bf  uint16
}{
	{0x3f800000, 0x3f80}, // 1
	{0x3f808000, 0x3f80}, // 1 + 2^-8: tie, keep the even 0x3f80
	{0x3f818000, 0x3f82}, // tie, round up to the even 0x3f82
	{0x3f808001, 0x3f81}, // just above the tie
	{0x3f807fff, 0x3f80}, // just below
	{0x7f7fffff, 0x7f80}, // max float32 rounds to +Inf
	{0x7f800000, 0x7f80}, // +Inf
	{0xff800000, 0xff80}, // -Inf
	{0x00000001, 0x0000}, // smallest subnormal rounds to +0
	{0x00008000, 0x0000}, // subnormal tie to even 0
	{0x00018000, 0x0002}, // subnormal tie to even 2
	{0x80000000, 0x8000}, // -0
	{0x7fc00000, 0x7fc0}, // quiet NaN
	{0x7f800001, 0x7fc0}, // signalling NaN becomes the quiet one
	{0xffffffff, 0x7fc0}, // negative NaN too (PyTorch drops the sign)
	{0x7fffffff, 0x7fc0}, // a NaN that would carry into the exponent
}

func TestF32ToBF16Cases(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, c := range bf16Cases {
			atEveryIndex(math.Float32frombits(c.f32), func(i int, row []float32) {
				dst := make([]uint16, len(row))
				F32ToBF16(dst, row)
				if dst[i] != c.bf {
					t.Fatalf("%#08x at index %d -> %#04x, want %#04x", c.f32, i, dst[i], c.bf)
				}
			})
		}
	})
}

// randBits draws float32 bit patterns: 1/4 uniform over all patterns (so
// NaNs, Infs and subnormals appear), 1/4 exact ties, the rest normal
// numbers.
func randBits(r *rand.Rand) float32 {
	b := r.Uint32()
	switch b & 3 {
	case 0:
		return math.Float32frombits(r.Uint32())
	case 1:
		return math.Float32frombits(r.Uint32()&^0xffff | 0x8000)
	}
	return float32(r.NormFloat64())
}

func TestBF16Kernels(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range vecSizes {
			for off := 0; off < 4; off++ {
				what := fmt.Sprintf("n=%d off=%d", n, off)
				src := randSlice(r, n, off, randBits)
				want := make([]uint16, n)
				F32ToBF16Ref(want, src)
				buf := make([]uint16, 2*guardLen+off+n)
				for i := range buf {
					buf[i] = 0xa5a5
				}
				got := buf[guardLen+off : guardLen+off+n]
				F32ToBF16(got, src)
				for i, v := range buf {
					inside := i >= guardLen+off && i < guardLen+off+n
					if !inside && v != 0xa5a5 {
						t.Fatalf("F32ToBF16 %s: wrote guard element %d", what, i-guardLen-off)
					}
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("F32ToBF16 %s: [%d] %#08x -> %#04x, want %#04x", what, i, math.Float32bits(src[i]), got[i], want[i])
					}
				}
				wide, check := guarded(n, (off+2)%4)
				BF16ToF32(wide, got)
				check(t, "BF16ToF32 "+what)
				for i := range got {
					if math.Float32bits(wide[i]) != uint32(got[i])<<16 {
						t.Fatalf("BF16ToF32 %s: [%d] %#04x -> %#08x", what, i, got[i], math.Float32bits(wide[i]))
					}
				}
			}
		}
	})
}
