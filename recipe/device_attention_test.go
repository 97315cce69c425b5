package recipe

import (
	"io"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor/cudabackend"
)

// The attention kernel setting reaches the device opener: the CPU refuses
// flash (it has its own attention), ignores auto and simt, and a bad name
// is refused with the accepted ones.
func TestAttentionKernelRequest(t *testing.T) {
	for _, k := range []string{"", "auto", "simt"} {
		if _, err := OpenDeviceFor(DeviceRequest{Device: "cpu", Precision: "auto", AttentionKernel: k}); err != nil {
			t.Errorf("cpu, attention kernel %q: %v", k, err)
		}
	}
	if _, err := OpenDeviceFor(DeviceRequest{Device: "cpu", AttentionKernel: "flash"}); err == nil || !strings.Contains(err.Error(), "attention kernel flash needs a CUDA device: the CPU has its own attention") {
		t.Errorf("cpu + flash: %v", err)
	}
	if _, err := OpenDeviceFor(DeviceRequest{Device: "cpu", AttentionKernel: "sdpa"}); err == nil || !strings.Contains(err.Error(), "want auto, flash, simt") {
		t.Errorf("bad name: %v", err)
	}
	// Through the run's options (what preflight and loadBase open).
	o := Defaults()
	o.Device, o.AttentionKernel = "cpu", "flash"
	if _, err := o.requestDevice(io.Discard); err == nil || !strings.Contains(err.Error(), "attention kernel flash") {
		t.Errorf("Options.AttentionKernel flash on the CPU: %v", err)
	}
	if ok, _ := cudabackend.Available(); !ok {
		_, err := OpenDeviceFor(DeviceRequest{Device: "auto", AttentionKernel: "flash"})
		if err == nil || !strings.Contains(err.Error(), "device auto found no GPU") {
			t.Errorf("auto without a GPU + flash: %v", err)
		}
	}
}
