package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestCPUBF16Run: precision bf16 on the CPU reaches the run. The log and
// options.json say bf16, the model's products go through tensor.CPUBF16
// (the losses move off the float32 run's: a run that quietly stayed in
// float32 would repeat them to the last digit) and training follows the
// float32 run within bf16 noise, for LoRA and for QLoRA: each step's loss
// within 5e-3 relative. Rounding an operand to bf16 moves it by up to 2⁻⁹
// (2e-3) relative; the loss averages over 256 tokens a step, so the
// roundings mostly cancel (measured ≤ 3.5e-4 over the 4 steps; the parity
// fixtures' loss 1.7e-4), and 5e-3 is 2.5 single roundings. On a CPU
// without the bf16 instructions the run is refused with the reason.
func TestCPUBF16Run(t *testing.T) {
	run := func(t *testing.T, precision string, qlora bool) (*Result, string) {
		o := quickOptions(t, "bf16-"+precision)
		o.Steps, o.BatchSize, o.Precision, o.Load4Bit = 4, 4, precision, qlora
		var log bytes.Buffer
		o.Log = &log
		res, err := Run(context.Background(), o)
		if err != nil {
			if precision == "bf16" && !tensor.CPUBF16Fast() {
				if !strings.Contains(err.Error(), cpuBF16MissingWant()) {
					t.Fatalf("bf16 on a CPU without bf16 instructions: %v, want refused with the reason", err)
				}
				return nil, ""
			}
			t.Fatal(err)
		}
		return res, log.String()
	}
	for _, qlora := range []bool{false, true} {
		name := "lora"
		if qlora {
			name = "qlora"
		}
		t.Run(name, func(t *testing.T) {
			want, _ := run(t, "f32", qlora)
			got, log := run(t, "bf16", qlora)
			if got == nil {
				return // refused, checked in run
			}
			if !strings.Contains(log, "device: cpu, precision bf16") {
				t.Errorf("the log does not say precision bf16:\n%s", log)
			}
			raw, err := os.ReadFile(filepath.Join(got.RunDir, "options.json"))
			if err != nil {
				t.Fatal(err)
			}
			var opts struct{ Precision string }
			if err := json.Unmarshal(raw, &opts); err != nil || opts.Precision != "bf16" {
				t.Errorf("options.json precision %q (%v), want bf16", opts.Precision, err)
			}
			if len(got.Losses) != len(want.Losses) || len(got.Losses) == 0 {
				t.Fatalf("%d bf16 losses, %d float32", len(got.Losses), len(want.Losses))
			}
			moved := false
			for i, l := range got.Losses {
				rel := math.Abs(l-want.Losses[i]) / math.Abs(want.Losses[i])
				t.Logf("step %d: loss %.6f (f32 %.6f, relative %.2g)", i+1, l, want.Losses[i], rel)
				if !(rel <= 5e-3) {
					t.Errorf("step %d: bf16 loss %v against float32's %v: %.3g relative, bound 5e-3", i+1, l, want.Losses[i], rel)
				}
				moved = moved || l != want.Losses[i]
			}
			if !moved {
				t.Error("bf16 losses equal float32's to the last digit: the products were not rounded")
			}
		})
	}
}
