package recipe

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor/cudabackend"
)

func TestOpenDevicePrecision(t *testing.T) {
	d, err := OpenDevice("cpu", "auto")
	if err != nil || d.BF16 || d.Precision() != "f32" || d.Fallback != "" {
		t.Fatalf("cpu auto: %+v, %v", d, err)
	}
	if !strings.Contains(d.Describe(), "precision f32") {
		t.Errorf("describe: %q", d.Describe())
	}
	if _, err := OpenDevice("cpu", "bf16"); err == nil || !strings.Contains(err.Error(), "the CPU computes in float32") {
		t.Fatalf("cpu bf16: %v, want refused", err)
	}
	if _, err := OpenDevice("cpu", "fp8"); err == nil {
		t.Fatal("precision fp8 accepted")
	}
	// auto: a GPU in bf16 where one opens, else the CPU with the reason.
	d, err = OpenDevice("auto", "auto")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := cudabackend.Available(); ok && d.Fallback == "" {
		if !d.BF16 || !strings.Contains(d.Describe(), "precision bf16") {
			t.Fatalf("GPU auto precision: %q", d.Describe())
		}
		return
	}
	if d.Fallback == "" || d.BF16 || !strings.Contains(d.Describe(), "using the CPU") {
		t.Fatalf("auto without a GPU must say why: %q", d.Describe())
	}
	if _, err := OpenDevice("auto", "bf16"); err == nil || !strings.Contains(err.Error(), "device auto found no GPU") {
		t.Fatalf("auto bf16 without a GPU: %v", err)
	}
}
