package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ftune/ftune/internal/half"
)

// Floats decodes an F32, F16, BF16 or F64 tensor into float32 (F64 is
// rounded; the others widen exactly).
func Floats(t Tensor) ([]float32, error) { return FloatsInto(nil, t) }

// FloatsInto is Floats writing into dst's memory when its capacity holds
// the tensor (a new slice otherwise), so a loader that converts tensor
// after tensor can reuse one buffer instead of leaving each conversion for
// the collector.
func FloatsInto(dst []float32, t Tensor) ([]float32, error) {
	n := t.NumElements()
	out := dst[:0]
	if cap(out) < n {
		out = make([]float32, n)
	}
	out = out[:n]
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case BF16:
		// The common dtype of released weights, so its loop is kept free of
		// bounds checks: a model loads through it.
		data := t.Data[:2*n]
		for i := range out {
			out[i] = math.Float32frombits(uint32(data[2*i])<<16 | uint32(data[2*i+1])<<24)
		}
	case F16:
		for i := range out {
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %q: dtype %s is not a float type (F32, F16, BF16 or F64 expected): %w", t.Name, t.DType, ErrUnsupportedDType)
	}
	return out, nil
}

// Ints decodes an I64 or I32 tensor.
func Ints(t Tensor) ([]int64, error) {
	n := t.NumElements()
	out := make([]int64, n)
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %q: dtype %s is not an integer type (I64 or I32 expected): %w", t.Name, t.DType, ErrUnsupportedDType)
	}
	return out, nil
}
