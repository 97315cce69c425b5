package cudabackend

import (
	"math"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// Helpers of the bf16-activation tests.

// widen returns bf16 bit patterns as float32 values (exact).
func widen(v []uint16) []float32 {
	w := make([]float32, len(v))
	for i, b := range v {
		w[i] = tensor.BF16ToF32(b)
	}
	return w
}

// roundBF16 rounds float32 values to bf16 bit patterns (to nearest even).
func roundBF16(v []float32) []uint16 {
	w := make([]uint16, len(v))
	for i, x := range v {
		w[i] = tensor.F32ToBF16(x)
	}
	return w
}

// bf16Order maps a bf16 pattern to an integer whose differences count
// ulps across zero (±0 both 0).
func bf16Order(b uint16) int {
	if b&0x8000 != 0 {
		return -int(b & 0x7FFF)
	}
	return int(b)
}

// ulpsBF16 is how many bf16 steps apart a and b are (0 for two NaNs, a
// large number for a NaN against a number).
func ulpsBF16(a, b uint16) int {
	an, bn := a&0x7fff > 0x7f80, b&0x7fff > 0x7f80
	if an || bn {
		if an && bn {
			return 0
		}
		return math.MaxInt32
	}
	d := bf16Order(a) - bf16Order(b)
	if d < 0 {
		d = -d
	}
	return d
}

// hostCopy reads x back from the device (bf16 bit patterns as uint16).
func hostCopy[T uint16 | float32](t *testing.T, b *Backend, x *tensor.Tensor) []T {
	t.Helper()
	v := make([]T, x.Numel())
	if err := b.ToHost(x, v); err != nil {
		t.Fatal(err)
	}
	return v
}
