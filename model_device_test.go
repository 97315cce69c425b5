package ftune

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestLoadDeviceNames: LoadOptions.Device and Precision (ftune generate's
// --device and --precision) take training's names; any other is the
// caller's mistake (ErrInvalidInput) named before any work, the model's
// folder not even looked for. Device "cpu" says so on Log; the zero
// options stay on the CPU and say nothing.
func TestLoadDeviceNames(t *testing.T) {
	for _, c := range []struct {
		opt  LoadOptions
		want string
	}{
		{LoadOptions{Device: "gpu"}, `device "gpu" is not auto, cpu, cuda or cuda:N`},
		{LoadOptions{Device: "cuda:-1"}, `device "cuda:-1" is not cuda:N with N ≥ 0`},
		{LoadOptions{Device: "cpu", Precision: "fp16"}, `precision "fp16" is not auto, bf16 or f32`},
	} {
		_, err := Load("/nonexistent/model", c.opt)
		if !errors.Is(err, ErrInvalidInput) || err.Error() != c.want {
			t.Errorf("%+v: %v, want ErrInvalidInput saying %q", c.opt, err, c.want)
		}
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	var log strings.Builder
	m, err := Load(TinyBase, LoadOptions{Device: "cpu", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if _, cpu := m.Net.Backend.(*tensor.CPUBackend); !cpu || m.Net.DType != tensor.F32 || log.String() != "device: cpu, precision f32\n" {
		t.Errorf("device cpu: %s in %v, log %q; want the CPU in float32, said", m.Net.Backend.Device(), m.Net.DType, log.String())
	}
	log.Reset()
	if _, err := Load(TinyBase, LoadOptions{Log: &log}); err != nil || log.Len() != 0 {
		t.Errorf("zero options: %v, log %q; want the CPU, nothing said", err, log.String())
	}
}

// TestExportRefusesABF16Model: a model loaded in bf16 (precision bf16 on
// a GPU) holds a float32 or float16 base's weights rounded; the formats
// that write the base from them refuse it, saying how to load it, and
// write nothing.
func TestExportRefusesABF16Model(t *testing.T) {
	m := loadTrained(t)
	net := *m.Net
	net.DType = tensor.BF16 // as a GPU's bf16 load sets it
	bf := *m
	bf.Net = &net
	dir := t.TempDir()
	for _, format := range []string{FormatMerged, FormatGGUF} {
		out := filepath.Join(dir, format)
		_, err := bf.Export(context.Background(), out, ExportOptions{Format: format})
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "loaded in bf16") {
			t.Errorf("%s: %v, want ErrInvalidInput saying the model is in bf16", format, err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: the refused export wrote %s", format, out)
		}
	}
}
