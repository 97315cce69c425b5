package cudabackend

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Options.WGMMA puts the nt and nn products the sm_90a kernels take on them
// (the launch counts say which kernel ran) and leaves the others (K, or
// an nn product's N, not a multiple of 8) on the sm_80 kernels; every result matches the float64
// reference within bf16 tolerance. Without bf16 mode, or on a GPU of
// another compute capability, opening with it is an error saying why.
func TestWGMMAOption(t *testing.T) {
	probe := open(t, Options{}) // skips without a GPU
	if _, err := openErr(Options{WGMMA: true}); err == nil || !strings.Contains(err.Error(), "needs BF16MatMul") {
		t.Errorf("WGMMA without BF16MatMul: err %v, want a refusal", err)
	}
	if !probe.dev.Hopper() {
		_, err := openErr(Options{BF16MatMul: true, WGMMA: true})
		if err == nil || !strings.Contains(err.Error(), "compute capability 9.0 only") {
			t.Errorf("WGMMA on a %d.%d GPU: err %v, want a refusal", probe.dev.Major, probe.dev.Minor, err)
		}
		return
	}
	b := open(t, Options{BF16MatMul: true, WGMMA: true})
	if p := b.Path(); !strings.Contains(p.GEMM, "sm_90a wgmma kernel") {
		t.Errorf("path %q does not name the wgmma kernel", p.GEMM)
	}
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		M, N, K   int
		transB    bool
		wantWGMMA bool
	}{
		{77, 130, 72, true, true},
		{129, 64, 200, true, true},
		{77, 136, 72, false, true},
		{77, 130, 72, false, false}, // nn with N not a multiple of 8: the sm_80 kernel
		{33, 40, 21, true, false},   // K not a multiple of 8
	} {
		kernel := "matmul_" + map[bool]string{true: "nt", false: "nn"}[c.transB] + "_wgmma_cbf16_fwd_bf16"
		before := b.dev.Launches()[kernel]
		av, wv := randF32(r, c.M*c.K), randF32(r, c.N*c.K)
		a := tensor.FromHost(b, tensor.F32, av, c.M, c.K).To(tensor.BF16)
		wShape := []int{c.K, c.N}
		if c.transB {
			wShape = []int{c.N, c.K}
		}
		w := tensor.FromHost(b, tensor.F32, wv, wShape...).To(tensor.BF16)
		got := tensor.MatMul(a, w, false, c.transB).To(tensor.F32).F32()
		cpu := tensor.CPUDefault()
		ac := tensor.FromHost(cpu, tensor.F32, a.To(tensor.F32).F32(), c.M, c.K)
		wc := tensor.FromHost(cpu, tensor.F32, w.To(tensor.F32).F32(), wShape...)
		want := tensor.MatMul(ac, wc, false, c.transB).F32()
		ran := b.dev.Launches()[kernel] - before
		if (ran == 1) != c.wantWGMMA || ran > 1 {
			t.Errorf("%+v: the wgmma kernel ran %d times", c, ran)
		}
		// Inputs bf16-exact on both sides: the error is the output's bf16
		// rounding and float32 accumulation (lowRankTol's reasoning).
		if e := relErr(got, want); !(e <= lowRankTol) {
			t.Errorf("%+v: normalised error %.3g > %g", c, e, lowRankTol)
		}
	}
}

// openErr is Open, for tests that expect it to fail.
func openErr(opt Options) (*Backend, error) { return Open(opt) }

// With Options.WGMMA the fused LoRA products run on the sm_90a kernels
// (matmul_{nt,nn}_wgmma[_nf4]_lr; the backward's with LoRA dropout's mask
// too) where they take the operands, and on the sm_80 ones where the rank or N
// breaks their multiple-of-8 contract; each result within lowRankTol of
// the float64 reference.
func TestWGMMAOptionFusesLoRA(t *testing.T) {
	probe := open(t, Options{}) // skips without a GPU
	if !probe.dev.Hopper() {
		t.Logf("compute capability %d.%d: WGMMA is refused at open (TestWGMMAOption checks it)", probe.dev.Major, probe.dev.Minor)
		return
	}
	b := open(t, Options{BF16MatMul: true, WGMMA: true, GEMMProvider: GEMMFtune})
	r := rand.New(rand.NewPCG(23, 24))
	for _, c := range []struct {
		lowRankCase
		kernel string
	}{
		{lowRankCase{77, 130, 72, 16, true, false, 2, 0, 0}, "matmul_nt_wgmma_lr_cbf16_fwd_bf16"},
		{lowRankCase{129, 64, 200, 32, true, false, 0.5, 1, 0}, "matmul_nt_wgmma_lr_cbf16_fwd_bf16"},
		{lowRankCase{77, 130, 72, 12, true, false, 2, 0, 0}, "matmul_nt_lr_cbf16_fwd_bf16"},
		{lowRankCase{77, 136, 72, 16, false, false, 1, 1, 0}, "matmul_nn_wgmma_lr_cbf16_fwd_bf16"},
		{lowRankCase{77, 136, 72, 16, false, false, 1, 1, 0.3}, "matmul_nn_wgmma_lr_cbf16_fwd_bf16"},
		{lowRankCase{77, 130, 72, 16, false, false, 1, 1, 0}, "matmul_nn_lr_cbf16_fwd_bf16"},
		// QLoRA: the NF4 weight dequantized into the wgmma tiles.
		{lowRankCase{77, 130, 72, 16, true, true, 2, 0, 0}, "matmul_nt_wgmma_nf4_lr_cbf16_fwd_bf16"},
		{lowRankCase{77, 136, 72, 16, false, true, 1, 1, 0.3}, "matmul_nn_wgmma_nf4_lr_cbf16_fwd_bf16"},
	} {
		t.Run(c.String(), func(t *testing.T) {
			before := b.dev.Launches()[c.kernel]
			got, ref, _ := runLowRank(t, b, r, c.lowRankCase, true)
			if ran := b.dev.Launches()[c.kernel] - before; ran != 1 {
				t.Errorf("%s ran %d times, want once", c.kernel, ran)
			}
			if e := relErr64(got, ref); !(e <= lowRankTol) {
				t.Errorf("normalised error %.3g > %g", e, lowRankTol)
			} else {
				t.Logf("%s: normalised error %.3g", c.kernel, e)
			}
		})
	}
}

// Options.WGMMALoads puts the same products on the TMA kernels (one block
// of 256 threads, or warp-specialised); each result within lowRankTol.
// (For contiguous operands they take what the cp.async kernels take: a
// row pitch of whole 16 bytes is K, the rank or N a multiple of 8.)
// Loads without WGMMA, or unknown, are refused at open.
func TestWGMMALoadsOption(t *testing.T) {
	probe := open(t, Options{}) // skips without a GPU
	for _, bad := range []Options{{BF16MatMul: true, WGMMALoads: "tma"}, {BF16MatMul: true, WGMMA: true, WGMMALoads: "bulk"}} {
		if _, err := openErr(bad); err == nil || !strings.Contains(err.Error(), "wgmma loads") {
			t.Errorf("%+v: err %v, want a refusal naming the wgmma loads", bad, err)
		}
	}
	if !probe.dev.Hopper() {
		return
	}
	r := rand.New(rand.NewPCG(25, 26))
	for _, loads := range []cuda.WGMMALoads{cuda.WGMMATMA, cuda.WGMMAWarpSpecialized} {
		b := open(t, Options{BF16MatMul: true, WGMMA: true, WGMMALoads: loads, GEMMProvider: GEMMFtune})
		if p := b.Path(); !strings.Contains(p.GEMM, "TMA loads") {
			t.Errorf("%s: path %q does not name the TMA loads", loads, p.GEMM)
		}
		infix := map[cuda.WGMMALoads]string{cuda.WGMMATMA: "_wgmma_tma", cuda.WGMMAWarpSpecialized: "_wgmma_ws"}[loads]
		for _, c := range []lowRankCase{
			{77, 130, 72, 16, true, false, 2, 0, 0},
			{129, 136, 200, 32, false, false, 1, 1, 0.3},
		} {
			t.Run(string(loads)+"/"+c.String(), func(t *testing.T) {
				kernel := "matmul_" + map[bool]string{true: "nt", false: "nn"}[c.transB] + infix + "_lr_cbf16_fwd_bf16"
				before := b.dev.Launches()[kernel]
				got, ref, _ := runLowRank(t, b, r, c, true)
				if ran := b.dev.Launches()[kernel] - before; ran != 1 {
					t.Errorf("%s ran %d times, want once", kernel, ran)
				}
				if e := relErr64(got, ref); !(e <= lowRankTol) {
					t.Errorf("normalised error %.3g > %g", e, lowRankTol)
				}
			})
		}
	}
}
