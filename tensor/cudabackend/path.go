package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
)

// Path names the GPU code path a backend runs, for `ftune env` and the
// run's env.json: what issue 10 asks a run to record so that figures can be
// tied to the kernels that produced them.
type Path struct {
	Device     string // the GPU's name
	Capability string // compute capability, e.g. "9.0"
	Precision  string // "bf16" (tensor-core GEMMs) or "f32"
	GEMM       string // the GEMM provider and kernel
	Attention  string // the attention kernels and when each runs
	Graphs     bool   // CUDA graph capture of the step
	// LoRA names how a LoRA layer's base and low-rank products run:
	// fused into one GEMM or apart (lowrank.go).
	LoRA string
	// MaxDeviceMemory is the allocator's cap in bytes (0: none).
	MaxDeviceMemory int64
}

// The provider strings: ftune's own PTX kernels, assembled from sm_80 PTX
// on every GPU unless Options.WGMMA puts the nt and nn products on the
// sm_90a ones (Path appends that), and cuBLASLt as a second provider
// (gemmPath).
const (
	gemmBF16       = "ftune PTX, bf16 tensor cores (mma.sync m16n8k16, cp.async; sm_80 code), float32 accumulation"
	gemmF32        = "ftune PTX, float32 SIMT (CUDA cores)"
	attentionSIMT  = "ftune PTX SIMT: tiled online-softmax kernels for causal S = T without windows or packed documents (padding allowed); one warp per query row for every other mask"
	attentionFlash = "ftune PTX flash attention on bf16 tensor cores (mma.sync m16n8k16, float32 softmax and accumulation, deterministic backward) for head sizes that are multiples of 16 up to 128, and 256, every mask"
)

// wgmmaLoadsPath names the sm_90a kernels' loads (Options.WGMMALoads).
var wgmmaLoadsPath = map[cuda.WGMMALoads]string{
	cuda.WGMMACpAsync:         "cp.async loads",
	cuda.WGMMATMA:             "TMA loads (cp.async.bulk.tensor, an mbarrier a stage)",
	cuda.WGMMAWarpSpecialized: "TMA loads from a producer warpgroup (warp-specialised, full and empty mbarriers)",
}

// attentionPath names the attention kernels in use: the setting (auto,
// flash or simt), what it resolved to and why.
func attentionPath(k AttentionKernel, bf16 bool) string {
	switch {
	case k == AttentionFlash:
		return "kernel flash (forced): " + attentionFlash + "; other shapes refused"
	case k == AttentionSIMT:
		return "kernel simt (forced): " + attentionSIMT
	case !bf16:
		return "kernel auto: " + attentionSIMT + " (the float32 parity path stays off the bf16 flash kernels)"
	}
	return "kernel auto: " + attentionFlash + "; for other shapes and soft-capped scores (Gemma 2) " + attentionSIMT
}

// Path describes the code path of this backend.
func (b *Backend) Path() Path {
	p := Path{Device: b.dev.Name, Capability: fmt.Sprintf("%d.%d", b.dev.Major, b.dev.Minor),
		Precision: "f32", GEMM: gemmF32, Attention: attentionPath(b.opt.AttentionKernel, b.opt.BF16MatMul), MaxDeviceMemory: b.alloc.Limit()}
	if b.opt.BF16MatMul {
		p.Precision = "bf16"
	}
	lt, ltErr := "", ""
	if b.lt != nil {
		lt = b.lt.String()
	}
	if b.gemm != nil {
		ltErr = b.gemm.ltErr
	}
	p.GEMM = gemmPath(b.opt.GEMMProvider, b.opt.BF16MatMul, lt, ltErr)
	if b.opt.WGMMA {
		p.GEMM += "; ftune's nt and nn products, fused LoRA products included, on the sm_90a wgmma kernels (wgmma m64n128k16, 128-byte swizzled shared memory, " + wgmmaLoadsPath[b.opt.WGMMALoads] + "; Options.WGMMA) where they take them"
	}
	p.LoRA = loraPath(b.opt, b.lt != nil)
	return p
}

// loraPath names how MatMulLowRank runs a LoRA layer's two products (lt:
// cuBLASLt is loaded).
func loraPath(o Options, lt bool) string {
	const fused = "fused: the low-rank product and the base product in one ftune GEMM (bf16 or NF4 weight), the output written once"
	switch {
	case !o.BF16MatMul:
		return "apart: two products (the float32 parity path)"
	case o.UnfusedLoRA:
		return "apart: two products (fused LoRA turned off)"
	case o.GEMMProvider == GEMMCuBLASLt:
		return "apart on cuBLASLt (forced) for bf16 weights; NF4 weights " + fused
	case lt:
		return fused + ", or per shape cuBLASLt's two products where auto measured them faster; apart where the base product splits K"
	}
	return fused + "; apart where the base product splits K"
}

// gemmPath names the GEMM provider in use: the setting (auto, ftune or
// cublaslt), what it resolved to and why. lt is the cuBLASLt library in
// use ("" when none), ltErr why auto runs without it.
func gemmPath(mode GEMMProvider, bf16 bool, lt, ltErr string) string {
	ours := gemmF32
	if bf16 {
		ours = gemmBF16
	}
	const nf4 = "; NF4 forward: ftune's fused dequantizing GEMM (cuBLASLt has no NF4 operand)"
	switch {
	case mode == GEMMCuBLASLt && bf16:
		return "provider cublaslt (forced): " + lt + ", bf16 inputs, float32 accumulation (CUBLAS_COMPUTE_32F)" + nf4
	case mode == GEMMCuBLASLt:
		return "provider cublaslt (forced): " + lt + ", float32 inputs, CUBLAS_COMPUTE_32F (float32 products, no TF32)"
	case mode == GEMMAuto && !bf16:
		return "provider auto: " + ours + " (the float32 parity path stays on ftune's kernel: cuBLASLt's fast modes would round inputs to TF32; it runs here only when forced)"
	case mode == GEMMAuto && lt == "":
		return "provider auto: " + ours + " for every product (cuBLASLt unavailable: " + ltErr + ")"
	case mode == GEMMAuto:
		return "provider auto: per product shape the faster, measured once, of " + ours + " and " + lt + " (choices in the run log)" + nf4
	}
	return "provider ftune: " + ours
}

// String is Path on one line.
func (p Path) String() string {
	graphs := "off"
	if p.Graphs {
		graphs = "on"
	}
	s := fmt.Sprintf("%s (compute %s), precision %s; GEMM: %s; LoRA: %s; attention: %s; CUDA graphs %s", p.Device, p.Capability, p.Precision, p.GEMM, p.LoRA, p.Attention, graphs)
	if p.MaxDeviceMemory > 0 {
		s += fmt.Sprintf("; device memory capped at %.2f GiB", float64(p.MaxDeviceMemory)/(1<<30))
	}
	return s
}
