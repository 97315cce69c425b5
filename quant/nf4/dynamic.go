package nf4

import "math"

// DynamicMap returns bitsandbytes' signed 8-bit "dynamic" quantization map,
// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), used
// to double-quantize the NF4 absmax values. For exponent i = 0..6 it holds
// ±10^(i-6) times the midpoints of torch.linspace(0.1, 1, 2^i+1), plus 0 and
// 1, sorted: 256 values from -0.99296875 to 1.
//
// Everything is computed in float32 the way torch does it (linspace from
// both ends, float32 midpoints, the Python power of ten rounded to float32
// before the product). Files carry their own map (nested_quant_map) and Load
// uses that one, so a last-ulp difference from a given torch build could
// only change which code a quantized absmax picks, never how a file reads.
func DynamicMap() [256]float32 { return dynamicMap }

var dynamicMap = makeDynamicMap()

func makeDynamicMap() (m [256]float32) {
	const maxExponentBits = 7
	vals := make([]float32, 0, 256)
	for i := 0; i < maxExponentBits; i++ {
		b := linspace32(0.1, 1, 1<<i+1)
		scale := float32(math.Pow(10, float64(i-(maxExponentBits-1))))
		for k := 0; k+1 < len(b); k++ {
			mean := (b[k] + b[k+1]) / 2
			v := scale * mean
			vals = append(vals, v, -v)
		}
	}
	vals = append(vals, 0, 1)
	copy(m[:], vals)
	sortF32(m[:])
	return m
}

// linspace32 is torch.linspace for float32 on the CPU: the first half
// counts up from start, the second half down from end, in float32.
func linspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float32(steps-1)
	half := steps / 2
	for i := range out {
		if i < half {
			out[i] = start + float32(step*float32(i))
		} else {
			out[i] = end - float32(step*float32(steps-i-1))
		}
	}
	return out
}

func sortF32(x []float32) {
	// Insertion sort: 256 values, run once at init.
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// bucketize returns the number of bounds strictly below x (torch.bucketize
// with right=False over sorted bounds).
func bucketize(bounds []float32, x float32) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// midpoints returns (code[:-1]+code[1:])/2 in float32.
func midpoints(code []float32) []float32 {
	b := make([]float32, len(code)-1)
	for i := range b {
		b[i] = (code[i] + code[i+1]) / 2
	}
	return b
}

// quantizeBlockwise8 is bitsandbytes' quantize_blockwise (default backend)
// for float32 input: per block of bs values the absmax, then the code index
// of each value scaled into [-1, 1]. Full blocks multiply by the float32
// reciprocal of the absmax, a short last block divides by it, as the
// reference does; an all-zero block is scaled by 1/1e-38 and maps to 0.
func quantizeBlockwise8(x []float32, code []float32, bs int) (q []uint8, absmax []float32) {
	bounds := midpoints(code)
	nb := (len(x) + bs - 1) / bs
	q = make([]uint8, len(x))
	absmax = make([]float32, nb)
	for b := 0; b < nb; b++ {
		blk := x[b*bs : min((b+1)*bs, len(x))]
		am := absMax(blk)
		absmax[b] = am
		am = max(am, 1e-38)
		full := len(blk) == bs
		inv := 1 / am
		for i, v := range blk {
			var s float32
			if full {
				s = v * inv
			} else {
				s = v / am
			}
			q[b*bs+i] = uint8(bucketize(bounds, clamp1(s)))
		}
	}
	return q, absmax
}

// absMax is the largest |x[i]|. It compares the values' bits with the sign
// cleared, which order as their magnitudes do, in integer registers, four
// lanes at a time: no branches, and no float comparison's NaN rules (the
// float loop spent a quarter of an 8B model's NF4 load here). A NaN has
// more bits than +Inf, so a block holding one gives a NaN, and one holding
// an infinity (no NaN) gives +Inf: either way not finite.
func absMax(x []float32) float32 {
	const magnitude = 0x7fffffff
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		m0 = max(m0, math.Float32bits(x[i])&magnitude)
		m1 = max(m1, math.Float32bits(x[i+1])&magnitude)
		m2 = max(m2, math.Float32bits(x[i+2])&magnitude)
		m3 = max(m3, math.Float32bits(x[i+3])&magnitude)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&magnitude)
	}
	return math.Float32frombits(max(m0, m1, m2, m3))
}

// isFinite reports whether v is neither NaN nor an infinity.
func isFinite(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func clamp1(x float32) float32 {
	return min(max(x, -1), 1)
}
