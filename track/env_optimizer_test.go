package track

import (
	"encoding/json"
	"strings"
	"testing"
)

// The GPU path's optimizer field reaches env.json under "optimizer".
func TestEnvRecordsTheOptimizerPath(t *testing.T) {
	var o options
	path := &GPUPathEnv{Device: "NVIDIA H200", Precision: "bf16", Optimizer: "device AdamW: multi-tensor"}
	WithGPU(func() (string, error) { return "NVIDIA H200", nil }, path)(&o)
	b, err := json.Marshal(CaptureEnv(o.env))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"optimizer":"device AdamW: multi-tensor"`; !strings.Contains(string(b), want) {
		t.Errorf("env.json lacks %s:\n%s", want, b)
	}
}
