package track

import (
	"encoding/json"
	"strings"
	"testing"
)

// WithGPU after WithEnv puts the GPU and its code path into env.json, and
// Summary names the precision and the graphs setting.
func TestEnvRecordsTheGPUPath(t *testing.T) {
	var o options
	path := &GPUPathEnv{Device: "NVIDIA H200", Capability: "9.0", Precision: "bf16", GEMM: "ftune PTX, bf16 tensor cores", Attention: "tiled", MaxDeviceMemory: 24 << 30}
	for _, opt := range []Option{WithEnv(EnvOptions{WorldSize: 1, Engine: "single"}), WithGPU(func() (string, error) { return "NVIDIA H200, compute 9.0", nil }, path), WithGPU(nil, nil)} {
		opt(&o)
	}
	e := CaptureEnv(o.env)
	if e.GPU != "NVIDIA H200, compute 9.0" || e.GPUPath != path || e.Engine != "single" {
		t.Fatalf("env: GPU %q, path %+v, engine %q", e.GPU, e.GPUPath, e.Engine)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"gpu_path":{"device":"NVIDIA H200","compute_capability":"9.0","precision":"bf16","gemm":"ftune PTX, bf16 tensor cores","attention":"tiled","cuda_graphs":false,"max_device_memory_bytes":25769803776}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("env.json lacks %s:\n%s", want, b)
		}
	}
	if s := e.Summary(); !strings.Contains(s, "GPU NVIDIA H200, compute 9.0 (bf16, CUDA graphs off)") {
		t.Errorf("summary %q", s)
	}
	// On the CPU nothing is recorded.
	var cpu options
	WithGPU(nil, nil)(&cpu)
	if e := CaptureEnv(cpu.env); e.GPUPath != nil || e.GPU != "" || strings.Contains(e.Summary(), "graphs") {
		t.Errorf("CPU env records a GPU: %+v", e)
	}
}
