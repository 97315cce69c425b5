package tensor

import (
	"math"
	"testing"
)

// TestDropoutIsXTimesTheMask: Dropout equals x·DropoutMask element by
// element, bit for bit, in float32 (one fused pass, split over the CPU's
// threads), in float64 (x·mask) and in bf16 (the float32 product rounded
// once), on a size that is not a multiple of 4.
func TestDropoutIsXTimesTheMask(t *testing.T) {
	const n = 3*4099 + 1
	for _, dt := range []DType{F32, F64, BF16} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i%17) - 8.25
		}
		x := FromHost(cpuDefault, F64, xs, 2, n/2).To(dt)
		got := Dropout(x, 99, 12345, 0.2).F64()
		mask := DropoutMask(cpuDefault, 99, 12345, 0.2, x.shape...).To(dt).F64()
		mask32 := DropoutMask(cpuDefault, 99, 12345, 0.2, x.shape...).F32()
		xv, kept := x.F64(), 0
		for i := range got {
			want := xv[i] * mask[i]
			switch dt {
			case F32:
				want = float64(float32(xv[i]) * float32(mask[i]))
			case BF16:
				// The float32 product rounded once (the float32 mask,
				// not one rounded to bf16 first), as the CUDA kernel.
				want = float64(BF16ToF32(F32ToBF16(float32(xv[i]) * mask32[i])))
			}
			if math.Float64bits(got[i]) != math.Float64bits(want) {
				t.Fatalf("%v element %d: %v, x·mask %v", dt, i, got[i], want)
			}
			if mask32[i] != 0 {
				kept++
			}
		}
		if kept == 0 || kept == n {
			t.Fatalf("%v: %d of %d kept", dt, kept, n)
		}
	}
}
