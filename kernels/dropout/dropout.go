// Package dropout is LoRA dropout's random stream: counter-based, so that
// any draw can be computed from the stream's key and its position alone.
// The CPU fills masks in parallel, a GPU kernel computes the same bits on
// the device (kernels/cuda/dropout.cu, tested against Mask here), a
// checkpoint stores two numbers, and a worker skips the rows another one
// runs by moving the position.
//
// Draw g of the stream with key k is SplitMix64's output function applied
// to k + (g+1)·γ, γ = 0x9E3779B97F4A7C15: exactly the g-th output of a
// SplitMix64 generator seeded with k (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014), computed
// without the g draws before it.
//
// Each 64-bit draw decides four elements, 16 bits each from the low end:
// element i of a mask drawn at position pos uses lane i%4 of draw
// pos + i/4, and is kept (set to keep = 1/(1−p)) when those bits are at
// least drop = ⌊p·65536⌋, so p is honoured to 1/65536. A mask of n
// elements consumes Draws(n) draws.
package dropout

import "math"

// Gamma is SplitMix64's increment, the golden ratio in 64-bit fixed point.
const Gamma = 0x9E3779B97F4A7C15

// Draw is draw g of the stream with the given key.
func Draw(key, g uint64) uint64 { return mix(key + (g+1)*Gamma) }

// mix is SplitMix64's output function.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Draws is how many draws a mask of n elements consumes.
func Draws(n int) uint64 { return (uint64(n) + 3) / 4 }

// Threshold is the 16-bit drop threshold and the kept elements' scale for
// dropout probability p in [0, 1).
func Threshold(p float64) (drop uint32, keep float32) {
	return uint32(p * 65536), float32(1 / (1 - p))
}

// Mask fills dst with the mask of len(dst) elements drawn at position pos:
// the reference every device's kernel is tested against, and the CPU's
// implementation (callers split dst at multiples of 4 elements to run
// parts in parallel, moving pos by a quarter of the offset).
func Mask(dst []float32, key, pos uint64, drop uint32, keep float32) {
	fill(dst, nil, key, pos, drop, keep)
}

// Apply sets dst[i] = x[i]·mask[i] for the mask Mask would draw at pos
// (len(x) = len(dst); dst may be x): dropout applied in one pass, the
// mask never stored. The product is the one a stored mask gives, bit for
// bit (x·keep or x·0).
func Apply(dst, x []float32, key, pos uint64, drop uint32, keep float32) {
	if len(x) != len(dst) {
		panic("dropout: Apply with lengths that differ")
	}
	fill(dst, x, key, pos, drop, keep)
}

// fill is Mask (x nil) and Apply: whole groups of 32 elements through
// the CPU's vector kernel where it has one (fillWide), the rest through
// fillScalar, the reference the kernel is tested against.
func fill(dst, x []float32, key, pos uint64, drop uint32, keep float32) {
	if n := fillWide(dst, x, key, pos, drop, keep); n > 0 {
		dst, pos = dst[n:], pos+uint64(n/4)
		if x != nil {
			x = x[n:]
		}
	}
	fillScalar(dst, x, key, pos, drop, keep)
}

// fillScalar is fill one draw at a time. Whole draws take a branch-free
// path: the keep/drop outcomes are random, so branches on them mispredict.
func fillScalar(dst, x []float32, key, pos uint64, drop uint32, keep float32) {
	kb := math.Float32bits(keep)
	// lane is keep where bits ≥ drop, else 0: drop−1−bits is negative
	// exactly then (both below 2^17), and its sign spread over 32 bits is
	// the select mask.
	lane := func(bits uint64) float32 {
		return math.Float32frombits(kb & uint32(int32(drop-1-uint32(bits&0xffff))>>31))
	}
	whole := len(dst) &^ 3
	state := key + (pos+1)*Gamma // Draw's argument, stepped by γ
	if x == nil {
		for i := 0; i < whole; i += 4 {
			r := mix(state)
			state += Gamma
			d := dst[i : i+4 : i+4]
			d[0], d[1], d[2], d[3] = lane(r), lane(r>>16), lane(r>>32), lane(r>>48)
		}
	} else {
		for i := 0; i < whole; i += 4 {
			r := mix(state)
			state += Gamma
			d, s := dst[i:i+4:i+4], x[i:i+4:i+4]
			d[0], d[1], d[2], d[3] = s[0]*lane(r), s[1]*lane(r>>16), s[2]*lane(r>>32), s[3]*lane(r>>48)
		}
	}
	if whole < len(dst) {
		r := mix(state)
		for j := whole; j < len(dst); j++ {
			m := lane(r)
			if x != nil {
				m *= x[j]
			}
			dst[j] = m
			r >>= 16
		}
	}
}
