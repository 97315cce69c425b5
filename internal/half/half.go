// Package half converts between float32 and the 16-bit float formats
// Hugging Face checkpoints use: bfloat16 (round to nearest even, as torch
// does) and IEEE half (exact widening, subnormals included). It holds the
// one float32 → bfloat16 rounding of the Go code: tensor, the safetensors
// reader, the exporters and kernels/asm's reference all convert through it
// (the assembly kernels are tested bit for bit against it).
package half

import "math"

// BF16ToF32 widens one bfloat16 bit pattern; exact.
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// BF16NaN is the bfloat16 every NaN rounds to: the positive quiet NaN.
const BF16NaN = 0x7fc0

// F32ToBF16 rounds to nearest even (ties to even) as PyTorch's
// c10::BFloat16 does: signs, infinities and subnormals are kept (no flush to
// zero), finite values above the largest bfloat16 round to ±Inf, and every
// NaN, signalling or negative ones included, becomes BF16NaN (without the
// check, a NaN's payload could carry into the exponent and round to ±0).
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return BF16NaN
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// F16ToF32 widens an IEEE half bit pattern; exact, subnormals included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// F32ToF16 rounds to nearest even; overflow goes to ±Inf.
func F32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	exp := int32(u>>23&0xff) - 127 + 15
	man := u & 0x7fffff
	if u&0x7fffffff > 0x7f800000 {
		return sign | 0x7e00
	}
	if u&0x7fffffff == 0x7f800000 || exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - exp)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}
