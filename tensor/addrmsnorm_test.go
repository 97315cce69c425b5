package tensor_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// unfusedCPU is the CPU backend seen through the Backend interface only: a
// backend without tensor.AddRMSNormBackend, so AddRMSNorm takes the
// fallback (Add, RMSNorm, RMSNormBackward, then the residual add).
type unfusedCPU struct{ tensor.Backend }

// TestAddRMSNormFusedEqualsFallback: the CPU's fused kernels give the
// fallback's h, y, inverse RMS, dx and dw bit for bit, in float32 (the
// kernels/asm rows) and float64 (the pure-Go definition), on ragged rows
// with and without a weight and a residual gradient.
func TestAddRMSNormFusedEqualsFallback(t *testing.T) {
	cpu := tensor.CPUDefault()
	if !tensor.SupportsAddRMSNorm(cpu) || tensor.SupportsAddRMSNorm(unfusedCPU{cpu}) {
		t.Fatal("the CPU backend must have the fused kernels and the wrapper must hide them")
	}
	rng := rand.New(rand.NewPCG(4, 2))
	randn := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, sz := range [][2]int{{1, 1}, {3, 7}, {5, 576}, {37, 33}} {
			R, C := sz[0], sz[1]
			a, b, dy, dh, w := randn(R*C), randn(R*C), randn(R*C), randn(R*C), randn(C)
			for _, withW := range []bool{true, false} {
				for _, withDh := range []bool{true, false} {
					run := func(be tensor.Backend) [][]float64 {
						up := func(v []float64, shape ...int) *tensor.Tensor {
							return tensor.FromHost(be, tensor.F64, v, shape...).To(dt)
						}
						var wt, dw, dht *tensor.Tensor
						if withW {
							wt, dw = up(w, C), tensor.Zeros(be, dt, C)
						}
						if withDh {
							dht = up(dh, R, C)
						}
						h, y, inv := tensor.AddRMSNorm(up(a, R, C), up(b, R, C), wt, 1e-6)
						dx := tensor.AddRMSNormBackward(dw, dht, up(dy, R, C), h, wt, inv)
						out := [][]float64{h.F64(), y.F64(), inv.F64(), dx.F64()}
						if dw != nil {
							out = append(out, dw.F64())
						}
						return out
					}
					fused, fallback := run(cpu), run(unfusedCPU{cpu})
					for i, names := 0, []string{"h", "y", "invRMS", "dx", "dw"}; i < len(fused); i++ {
						for j := range fused[i] {
							if fused[i][j] != fallback[i][j] {
								t.Fatalf("%v %dx%d w=%v dh=%v: %s[%d] fused %v, fallback %v", dt, R, C, withW, withDh, names[i], j, fused[i][j], fallback[i][j])
							}
						}
					}
				}
			}
		}
	}
}
