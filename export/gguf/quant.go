package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/tensor"
)

// Block formats, as ggml defines them (ggml-common.h) and quantizes them
// (ggml-quants.c, the *_ref functions used to write model files):
//
//	Q8_0: 32 values → f16 d, then 32 int8 q;   x = q·d,       d = amax/127,
//	      q = round-half-away(x/d).
//	Q4_0: 32 values → f16 d, then 16 bytes;     x = (q−8)·d,   d = m/−8 where m
//	      is the value of largest magnitude (sign kept), q = min(15, ⌊x/d + 8.5⌋).
//	      Byte j holds value j in its LOW nibble and value j+16 in its HIGH
//	      nibble (not neighbours: the first half of the block, then the second).
//
// The scale is rounded to f16 for storage but the values are divided by the
// float32 scale, exactly as ggml does, so files are byte-identical to
// llama.cpp's quantizer for the same float32 input.
const (
	QK8_0 = 32
	QK4_0 = 32
)

// quantizeQ8_0 appends the Q8_0 blocks of x (len a multiple of 32) to dst.
func quantizeQ8_0(dst []byte, x []float32) []byte {
	for b := 0; b < len(x); b += QK8_0 {
		blk := x[b : b+QK8_0]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, tensor.F32ToF16(d))
		for _, v := range blk {
			dst = append(dst, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return dst
}

// quantizeQ4_0 appends the Q4_0 blocks of x (len a multiple of 32) to dst.
func quantizeQ4_0(dst []byte, x []float32) []byte {
	for b := 0; b < len(x); b += QK4_0 {
		blk := x[b : b+QK4_0]
		_, m := largestMagnitude(blk)
		d := m / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, tensor.F32ToF16(d))
		for j := 0; j < QK4_0/2; j++ {
			// float32(...) rounds the product before the add, as ggml
			// does: Go on arm64 would otherwise fuse them (FMADDS).
			q0 := min(15, int(float32(blk[j]*id)+8.5))
			q1 := min(15, int(float32(blk[j+QK4_0/2]*id)+8.5))
			dst = append(dst, byte(q0)|byte(q1)<<4)
		}
	}
	return dst
}

// dequantizeQ8_0 expands Q8_0 blocks into dst (len a multiple of 32).
func dequantizeQ8_0(dst []float32, src []byte) {
	const bs = 2 + QK8_0
	for b := 0; b < len(dst)/QK8_0; b++ {
		blk := src[b*bs : (b+1)*bs]
		d := tensor.F16ToF32(binary.LittleEndian.Uint16(blk))
		for j := 0; j < QK8_0; j++ {
			dst[b*QK8_0+j] = float32(int8(blk[2+j])) * d
		}
	}
}

// dequantizeQ4_0 expands Q4_0 blocks into dst (len a multiple of 32).
func dequantizeQ4_0(dst []float32, src []byte) {
	const bs = 2 + QK4_0/2
	for b := 0; b < len(dst)/QK4_0; b++ {
		blk := src[b*bs : (b+1)*bs]
		d := tensor.F16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*QK4_0 : (b+1)*QK4_0]
		for j := 0; j < QK4_0/2; j++ {
			q := blk[2+j]
			out[j] = float32(int(q&0x0f)-8) * d
			out[j+QK4_0/2] = float32(int(q>>4)-8) * d
		}
	}
}

// Encode converts float32 values to type t's bytes. len(x) must fill whole
// blocks; non-finite values are an error for the quantized types (one would
// poison its block's scale).
func Encode(t TensorType, x []float32) ([]byte, error) {
	n, err := t.RowBytes(len(x))
	if err != nil {
		return nil, err
	}
	return AppendEncoded(make([]byte, 0, n), t, x)
}

// AppendEncoded is Encode appending to out: an encoder that goes a chunk
// at a time into one buffer leaves no chunk behind for the collector.
func AppendEncoded(out []byte, t TensorType, x []float32) ([]byte, error) {
	if _, err := t.RowBytes(len(x)); err != nil {
		return nil, err
	}
	start := len(out)
	switch t {
	case F32:
		for _, v := range x {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	case F16:
		for i, v := range x {
			h := tensor.F32ToF16(v)
			if h&0x7c00 == 0x7c00 { // exponent all ones: the value became Inf (or was not finite)
				return nil, narrowingError(i, v, t)
			}
			out = binary.LittleEndian.AppendUint16(out, h)
		}
	case BF16:
		for i, v := range x {
			h := tensor.F32ToBF16(v)
			if h&0x7f80 == 0x7f80 { // a float32 within 2⁻⁸ of its largest rounds to Inf
				return nil, narrowingError(i, v, t)
			}
			out = binary.LittleEndian.AppendUint16(out, h)
		}
	default:
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("gguf: value %d is %v; %s cannot hold it", i, v, t)
			}
		}
		switch t {
		case Q8_0:
			out = quantizeQ8_0(out, x)
		case Q4_0:
			out = quantizeQ4_0(out, x)
		case Q4_1:
			out = quantizeQ4_1(out, x)
		case Q5_0:
			out = quantizeQ5_0(out, x)
		case Q5_1:
			out = quantizeQ5_1(out, x)
		case Q2_K:
			out = appendBlocksParallel(out, x, t, quantizeQ2_K)
		case Q3_K:
			out = appendBlocksParallel(out, x, t, quantizeQ3_K)
		case Q4_K:
			out = appendBlocksParallel(out, x, t, func(dst []byte, x []float32) []byte { return quantizeMinMaxK(dst, x, 4) })
		case Q5_K:
			out = appendBlocksParallel(out, x, t, func(dst []byte, x []float32) []byte { return quantizeMinMaxK(dst, x, 5) })
		case Q6_K:
			out = appendBlocksParallel(out, x, t, quantizeQ6_K)
		case IQ4_NL:
			out = appendBlocksParallel(out, x, t, func(dst []byte, x []float32) []byte { return quantizeIQ4(dst, x, nil, QK4_NL) })
		case IQ4_XS:
			out = appendBlocksParallel(out, x, t, func(dst []byte, x []float32) []byte { return quantizeIQ4(dst, x, nil, QK_K) })
		default:
			// A type blockInfo knows but no case here would otherwise
			// append nothing and report success.
			return nil, fmt.Errorf("gguf: encoding %s is not implemented", t)
		}
		if err := CheckScales(t, out[start:], x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// narrowingError explains why value i, v, cannot be written as t (f16 or
// bf16): it is not finite, or it is finite and rounds to Inf (beyond
// f16's ±65504), which would load as Inf and poison every result.
func narrowingError(i int, v float32, t TensorType) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("value %d is %v: %w; %s cannot hold it", i, v, export.ErrNonFinite, t)
	}
	return fmt.Errorf("value %d is %v, beyond what %s can hold (its largest is %v): %w; it would be written as Inf: use a type with float32's range (--quant bf16 or f32)", i, v, t, maxOf(t), export.ErrOutOfRange)
}

// maxOf is the largest finite value of f16 or bf16.
func maxOf(t TensorType) float32 {
	if t == BF16 {
		return tensor.BF16ToF32(0x7f7f)
	}
	return 65504
}

// f16Fields are the byte offsets, in one block of t, of the f16 values
// ggml stores there: the scale d and, for the types with one, the minimum
// (or its scale dmin). They come from ggml-common.h's block structs, as
// the dequantizers here read them.
func f16Fields(t TensorType) []int {
	switch t {
	case Q8_0, Q4_0, Q5_0, IQ4_NL, IQ4_XS:
		return []int{0}
	case Q4_1, Q5_1, Q4_K, Q5_K:
		return []int{0, 2}
	case Q2_K:
		return []int{80, 82}
	case Q3_K:
		return []int{108}
	case Q6_K:
		return []int{208}
	}
	return nil
}

// CheckScales returns an error wrapping export.ErrOutOfRange for the first
// block of data (blocks of t) whose f16 scale or minimum is Inf or NaN:
// finite values can still need a scale beyond f16's ±65504 (Q8_0's is the
// block's largest magnitude / 127, Q4_1's minimum the block's smallest
// value), which a file would hold as Inf and every value of the block
// would load as Inf or NaN. x, the values encoded (nil when unknown),
// lets the error say how large the block's values are.
func CheckScales(t TensorType, data []byte, x []float32) error {
	fields := f16Fields(t)
	values, size, ok := t.blockInfo()
	if len(fields) == 0 || !ok {
		return nil
	}
	for b := 0; (b+1)*size <= len(data); b++ {
		for _, off := range fields {
			if binary.LittleEndian.Uint16(data[b*size+off:])&0x7c00 != 0x7c00 {
				continue
			}
			lo, hi := b*values, (b+1)*values
			what := ""
			if hi <= len(x) {
				_, m := largestMagnitude(x[lo:hi])
				what = fmt.Sprintf(", the largest in magnitude %v", m)
			}
			return fmt.Errorf("block %d (values %d to %d%s) needs a scale or minimum beyond the f16 range (±65504) that %s stores them in: %w; it would be written as Inf: use a type with float32's range (--quant bf16 or f32)",
				b, lo, hi-1, what, t, export.ErrOutOfRange)
		}
	}
	return nil
}

// appendBlocksParallel appends quantize's blocks of x (type t) to out,
// split over the cores: the k-quants search for their scales (about 15-20
// M values a second on one core, ten minutes for an 8B model), and blocks
// are independent. Parts are at least 64 blocks.
func appendBlocksParallel(out []byte, x []float32, t TensorType, quantize func(dst []byte, x []float32) []byte) []byte {
	values, size, _ := t.blockInfo()
	return appendParallel(out, x, values, size, 64, quantize)
}

// appendParallel appends encode(x) to out, x cut into parts of whole units
// of unit values (each encoded into unitBytes bytes, whatever the others
// hold), at least minUnits units a part, one part per core. Each goroutine
// writes its own stretch of out's bytes, so the result is the serial one's.
func appendParallel(out []byte, x []float32, unit, unitBytes, minUnits int, encode func(dst []byte, x []float32) []byte) []byte {
	units := len(x) / unit
	parts := min(runtime.GOMAXPROCS(0), units/minUnits)
	if parts <= 1 {
		return encode(out, x)
	}
	base := len(out)
	out = slices.Grow(out, units*unitBytes)[:base+units*unitBytes]
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*units/parts, (p+1)*units/parts
		// The part's stretch, capped so that an encoder writing more than
		// its units' bytes could not spill into the next part's.
		dst := out[base+lo*unitBytes : base+lo*unitBytes : base+hi*unitBytes]
		wg.Go(func() { encode(dst, x[lo*unit:hi*unit]) })
	}
	wg.Wait()
	return out
}

// Decode expands n values of type t from src into float32.
func Decode(t TensorType, src []byte, n int) ([]float32, error) {
	want, err := t.RowBytes(n)
	if err != nil {
		return nil, err
	}
	if len(src) < want {
		return nil, fmt.Errorf("gguf: %d %s values need %d bytes, have %d", n, t, want, len(src))
	}
	out := make([]float32, n)
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = tensor.BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		dequantizeQ8_0(out, src)
	case Q4_0:
		dequantizeQ4_0(out, src)
	case Q4_1:
		dequantizeQ4_1(out, src)
	case Q5_0:
		dequantizeQ5(out, src, false)
	case Q5_1:
		dequantizeQ5(out, src, true)
	case Q2_K:
		dequantizeQ2_K(out, src)
	case Q3_K:
		dequantizeQ3_K(out, src)
	case Q4_K:
		dequantizeMinMaxK(out, src, 4)
	case Q5_K:
		dequantizeMinMaxK(out, src, 5)
	case Q6_K:
		dequantizeQ6_K(out, src)
	case IQ4_NL:
		dequantizeIQ4_NL(out, src)
	case IQ4_XS:
		dequantizeIQ4_XS(out, src)
	default:
		return nil, fmt.Errorf("gguf: decoding %s is not implemented", t)
	}
	return out, nil
}
