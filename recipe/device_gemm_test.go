package recipe

import (
	"io"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor/cudabackend"
)

// The GEMM provider setting reaches the device opener: the CPU refuses
// cublaslt (it has its own kernels), ignores auto and ftune, and a bad name
// is refused with the accepted ones.
func TestGEMMProviderRequest(t *testing.T) {
	for _, gp := range []string{"", "auto", "ftune"} {
		d, err := OpenDeviceFor(DeviceRequest{Device: "cpu", Precision: "auto", GEMMProvider: gp})
		if err != nil || d.GEMMProvider != "" || strings.Contains(d.Describe(), "GEMM provider") {
			t.Errorf("cpu, gemm provider %q: %v, %+v", gp, err, d)
		}
	}
	if _, err := OpenDeviceFor(DeviceRequest{Device: "cpu", GEMMProvider: "cublaslt"}); err == nil || !strings.Contains(err.Error(), "gemm provider cublaslt needs a CUDA device: the CPU has its own kernels") {
		t.Errorf("cpu + cublaslt: %v", err)
	}
	if _, err := OpenDeviceFor(DeviceRequest{Device: "cpu", GEMMProvider: "cublas"}); err == nil || !strings.Contains(err.Error(), "want auto, ftune, cublaslt") {
		t.Errorf("bad name: %v", err)
	}
	// Through the run's options (what preflight and loadBase open).
	o := Defaults()
	o.Device, o.GEMMProvider = "cpu", "cublaslt"
	if _, err := o.requestDevice(io.Discard); err == nil || !strings.Contains(err.Error(), "gemm provider cublaslt") {
		t.Errorf("Options.GEMMProvider cublaslt on the CPU: %v", err)
	}
	if ok, _ := cudabackend.Available(); !ok {
		_, err := OpenDeviceFor(DeviceRequest{Device: "auto", GEMMProvider: "cublaslt"})
		if err == nil || !strings.Contains(err.Error(), "device auto found no GPU") {
			t.Errorf("auto without a GPU + cublaslt: %v", err)
		}
	}
}
