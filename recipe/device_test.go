package recipe

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/asm"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// cpuBF16MissingWant is the refusal's reason for precision bf16 on this
// build's CPU kernels, per architecture.
func cpuBF16MissingWant() string {
	switch runtime.GOARCH {
	case "amd64":
		if tensor.CPUBF16Instructions() != "" {
			return "this CPU has no AVX512_BF16 (VDPBF16PS)"
		}
	case "arm64":
		if tensor.CPUBF16Instructions() != "" {
			return "this CPU has no BF16 (BFDOT)"
		}
	}
	return "this build has no bf16 kernel for this CPU"
}

func TestOpenDevicePrecision(t *testing.T) {
	d, err := OpenDevice("cpu", "auto")
	if err != nil || d.BF16 || d.Precision() != "f32" || d.Fallback != "" {
		t.Fatalf("cpu auto: %+v, %v", d, err)
	}
	if !strings.Contains(d.Describe(), "precision f32") {
		t.Errorf("describe: %q", d.Describe())
	}
	checkCPUBF16 := func(t *testing.T, d Device, err error) {
		t.Helper()
		if !tensor.CPUBF16Fast() {
			if err == nil || !strings.Contains(err.Error(), cpuBF16MissingWant()) {
				t.Fatalf("cpu bf16 without bf16 instructions: %v, want refused with the reason", err)
			}
			return
		}
		if err != nil || !d.BF16 || d.Backend != tensor.CPUBF16() || d.ModelDType() != tensor.F32 || !strings.Contains(d.Describe(), "precision bf16") {
			t.Fatalf("cpu bf16: %+v (%q), %v; want CPUBF16 with float32 activations", d, d.Describe(), err)
		}
		if !(d.CPUBF16Speedup > 0) || !strings.Contains(d.Describe(), "float32's speed on this CPU (measured at open)") {
			t.Fatalf("cpu bf16 must say what it measured: %q", d.Describe())
		}
		t.Log(d.Describe())
	}
	d, err = OpenDevice("cpu", "bf16")
	checkCPUBF16(t, d, err)
	// Where bf16 measured no faster, the line says that f32 would do.
	slow := Device{Backend: tensor.CPUBF16(), BF16: true, CPUBF16Speedup: 1.02}
	if s := slow.Describe(); !strings.Contains(s, "bf16 products 1.02× float32's speed") || !strings.Contains(s, "no faster than float32 here") {
		t.Errorf("describe of a CPU where bf16 does not pay: %q", s)
	}
	// Without the bf16 instructions (the AVX2 kernels stand in for such a
	// CPU) bf16 is refused, not run slower than float32.
	saved := asm.CurrentImpl()
	if err := asm.SetImpl(asm.ImplAVX2); err == nil {
		d, err := OpenDevice("cpu", "bf16")
		checkCPUBF16(t, d, err)
		if err == nil {
			t.Fatal("cpu bf16 opened under the AVX2 kernels")
		}
		if err := asm.SetImpl(saved); err != nil {
			t.Fatal(err)
		}
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
	// bf16 asked for: the CPU's bf16 products, with the reason there is
	// no GPU, or refused saying both.
	d, err = OpenDevice("auto", "bf16")
	if !tensor.CPUBF16Fast() {
		if err == nil || !strings.Contains(err.Error(), "device auto found no GPU") {
			t.Fatalf("auto bf16 without a GPU or bf16 instructions: %v", err)
		}
		return
	}
	checkCPUBF16(t, d, err)
	if d.Fallback == "" || !strings.Contains(d.Describe(), "using the CPU") {
		t.Fatalf("auto bf16 without a GPU must say why: %q", d.Describe())
	}
}
