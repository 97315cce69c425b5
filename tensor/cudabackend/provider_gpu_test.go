package cudabackend

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// openLt opens a backend with a cuBLASLt provider, or skips with the one
// line saying why (no GPU, or no cuBLASLt library).
func openLt(t *testing.T, opt Options) *Backend {
	t.Helper()
	if ok, reason := Available(); !ok {
		t.Skip(reason)
	}
	if simulated {
		t.Skip("cuBLASLt needs a real GPU: under ptxsim (-tags cudasim) device pointers are host memory a vendor library cannot use")
	}
	b, err := Open(opt)
	if err != nil {
		if strings.Contains(err.Error(), "cublaslt:") {
			t.Skip(err.Error())
		}
		t.Fatal(err)
	}
	return b
}

// TestGEMMProviders runs MatMul through each provider setting against the
// CPU backend: every transpose, batched and shared weights, ragged sizes,
// beta = 1 accumulation into a known dst and beta = 0 into a NaN-poisoned
// one. bf16 modes at the conformance MatMul bound (1e-2 normalised: bf16
// operands), float32 at 1e-5 (forced cuBLASLt on float32 must not use
// TF32, whose error would be ~1e-3). Auto must record a measured choice per
// shape, logged once however often the shape runs.
func TestGEMMProviders(t *testing.T) {
	if ok, reason := Available(); !ok {
		t.Skip(reason)
	}
	for _, c := range []struct {
		name string
		opt  Options
		tol  float64
	}{
		{"cublaslt_bf16", Options{BF16MatMul: true, GEMMProvider: GEMMCuBLASLt}, 1e-2},
		{"cublaslt_f32", Options{GEMMProvider: GEMMCuBLASLt}, 1e-5},
		{"auto_bf16", Options{BF16MatMul: true, GEMMProvider: GEMMAuto}, 1e-2},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			c.opt.Log = &log
			b := openLt(t, c.opt)
			if b.lt == nil { // auto without the library: it said why
				t.Skip(b.Path().GEMM)
			}
			cpu := tensor.CPUDefault()
			r := rand.New(rand.NewPCG(rand.Uint64(), 7))
			for rep := 0; rep < 2; rep++ { // the second pass hits the cache
				for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
					for i, sz := range [][4]int{{1, 37, 29, 45}, {3, 70, 33, 130}, {1, 256, 128, 64}} {
						B, M, N, K := sz[0], sz[1], sz[2], sz[3]
						ash := []int{B, M, K}
						if tr[0] {
							ash = []int{B, K, M}
						}
						// A shared weight (one tall GEMM) where a is not
						// transposed, except the batched case i == 1.
						wsh := []int{K, N}
						if tr[1] {
							wsh = []int{N, K}
						}
						if tr[0] || i == 1 {
							wsh = append([]int{B}, wsh...)
						}
						av, wv, cv := randF32(r, B*M*K), randF32(r, tensor.Shape(wsh).Numel()), randF32(r, B*M*N)
						run := func(be tensor.Backend, beta float64) []float32 {
							a := tensor.FromHost(be, tensor.F32, append([]float32(nil), av...), ash...)
							w := tensor.FromHost(be, tensor.F32, append([]float32(nil), wv...), wsh...)
							dst := tensor.FromHost(be, tensor.F32, append([]float32(nil), cv...), B, M, N)
							if beta == 0 {
								dst = tensor.Full(be, tensor.F32, math.NaN(), B, M, N)
							}
							tensor.MatMulInto(dst, a, w, tr[0], tr[1], 0.5, beta)
							return dst.F32()
						}
						for _, beta := range []float64{0, 1} {
							if e := relErr(run(b, beta), run(cpu, beta)); !(e <= c.tol) {
								t.Errorf("%s trans=%v B,M,N,K=%v beta=%g: normalised error %.3g > %g", c.name, tr, sz, beta, e, c.tol)
							}
						}
					}
				}
			}
			ch := b.GEMMChoices()
			if len(ch) == 0 {
				t.Fatalf("no GEMM choices recorded; log %q", log.String())
			}
			for _, x := range ch {
				if strings.Count(log.String(), x.String()+"\n") != 1 {
					t.Errorf("choice %q logged %d times, want once", x, strings.Count(log.String(), x.String()))
				}
				if c.opt.GEMMProvider == GEMMAuto && x.Why == "measured" && (x.FtuneMs <= 0 || x.CuBLASLtMs <= 0) {
					t.Errorf("auto choice %+v without times", x)
				}
				if c.opt.GEMMProvider == GEMMCuBLASLt && !x.CuBLASLt {
					t.Errorf("forced cuBLASLt ran %q on ftune", x)
				}
			}
			t.Logf("%s: %s\n%s", c.name, b.Path().GEMM, log.String())
		})
	}
}
