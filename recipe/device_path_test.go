package recipe

import (
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/train"
)

// On the CPU no device-memory metrics and no GPU path are recorded, and
// ftune env's GPU line says why there is none; on a GPU both are there.
func TestDevicePathAndMetrics(t *testing.T) {
	cpu := Device{Backend: tensor.CPUDefault()}
	if _, ok := cpu.GPUPath(); ok || deviceMetrics(cpu.Backend) != nil {
		t.Error("the CPU reports a GPU path or device-memory metrics")
	}
	if ok, _ := cudabackend.Available(); !ok {
		if _, err := DescribeGPU(); err == nil {
			t.Error("DescribeGPU without a GPU: no error")
		}
		t.Skip("no GPU: the device-memory metrics need one")
	}
	d, err := OpenDevice("cuda", "bf16")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := d.GPUPath()
	if !ok || p.Precision != "bf16" {
		t.Fatalf("GPU path %+v", p)
	}
	cbs := deviceMetrics(d.Backend)
	x := tensor.Zeros(d.Backend, tensor.F32, 1<<20)
	m := train.Metrics{}
	if err := cbs[0].OnStepEnd(nil, m); err != nil {
		t.Fatal(err)
	}
	if m["train/peak_device_gib"] < 4.0/1024 || m["train/reserved_device_gib"] < 4.0/1024 {
		t.Errorf("device metrics %v after a 4 MiB tensor", m)
	}
	_ = x
}
