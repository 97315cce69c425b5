package cudabackend

import (
	"strings"
	"testing"
)

func TestPathString(t *testing.T) {
	p := Path{Device: "NVIDIA H200", Capability: "9.0", Precision: "bf16", GEMM: gemmBF16, Attention: attentionPath(AttentionAuto, true), MaxDeviceMemory: 24 << 30}
	s := p.String()
	for _, want := range []string{"NVIDIA H200 (compute 9.0), precision bf16", "GEMM: ftune PTX, bf16 tensor cores (mma.sync m16n8k16, cp.async; sm_80 code)", "attention: kernel auto: ftune PTX flash attention", "for other shapes and soft-capped scores (Gemma 2) ftune PTX SIMT: tiled", "CUDA graphs off", "capped at 24.00 GiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}

// On a GPU the backend names the path its options select.
func TestBackendPath(t *testing.T) {
	b := open(t, Options{BF16MatMul: true})
	if p := b.Path(); p.Precision != "bf16" || p.GEMM != "provider ftune: "+gemmBF16 || p.Graphs || p.Device == "" {
		t.Errorf("bf16 backend path %+v", p)
	}
	if p := b.Path(); !strings.HasPrefix(p.LoRA, "fused: ") || !strings.Contains(p.String(), "; LoRA: fused: ") {
		t.Errorf("bf16 backend's LoRA path %q (%s)", p.LoRA, p)
	}
	f := open(t, Options{})
	if p := f.Path(); p.Precision != "f32" || p.GEMM != "provider ftune: "+gemmF32 || !strings.HasPrefix(p.LoRA, "apart: ") {
		t.Errorf("f32 backend path %+v", p)
	}
	u := open(t, Options{BF16MatMul: true, UnfusedLoRA: true})
	if p := u.Path(); p.LoRA != "apart: two products (fused LoRA turned off)" {
		t.Errorf("unfused bf16 backend's LoRA path %q", p.LoRA)
	}
}
