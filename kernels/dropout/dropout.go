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

// Gamma is SplitMix64's increment, the golden ratio in 64-bit fixed point.
const Gamma = 0x9E3779B97F4A7C15

// Draw is draw g of the stream with the given key.
func Draw(key, g uint64) uint64 {
	z := key + (g+1)*Gamma
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
	for i := 0; i < len(dst); i += 4 {
		r := Draw(key, pos+uint64(i/4))
		for j := i; j < min(i+4, len(dst)); j++ {
			if uint32(r&0xffff) >= drop {
				dst[j] = keep
			} else {
				dst[j] = 0
			}
			r >>= 16
		}
	}
}
