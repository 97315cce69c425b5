package bench

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ftune/ftune/kernels/asm"
)

// The harness end to end on a toy shape: the random folder loads, both
// weight formats train, and the loss of near-zero random weights is close
// to ln(vocab) (uniform logits), the value any working forward gives here.
func TestRunLoRAOnRandomModel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // RunLoRA sets both
	defer asm.SetThreads(asm.Threads())
	s := Shape{Name: "toy", Vocab: 64, Hidden: 32, Layers: 2, Heads: 4, KVHeads: 2, FFN: 48, Batch: 2, Seq: 8}
	cache := t.TempDir()
	dir, err := RandomModelDir(cache, s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := RandomModelDir(cache, s)
	if err != nil || again != dir {
		t.Fatalf("second RandomModelDir: %q, %v; want the cached %q", again, err, dir)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".lorabench-*")); len(left) != 0 {
		t.Fatalf("temporary folders left behind: %v", left)
	}
	for _, nf4 := range []bool{false, true} {
		timed := false
		r, err := RunLoRA(LoRARun{Shape: s, ModelDir: dir, Threads: 1, NF4: nf4, Warmup: 1, Steps: 2, Timed: func() { timed = true }})
		if err != nil {
			t.Fatalf("nf4=%v: %v", nf4, err)
		}
		if !timed || r.TokensPerS <= 0 || r.StepS <= 0 || r.Batch != 2 || r.Seq != 8 {
			t.Fatalf("nf4=%v: result %+v (timed hook called: %v)", nf4, r, timed)
		}
		if want := math.Log(64); math.Abs(r.Loss-want) > 0.1 {
			t.Fatalf("nf4=%v: loss %v, want about ln 64 = %.3f", nf4, r.Loss, want)
		}
		if r.PeakRSSMiB <= 0 && fileExists("/proc/self/status") {
			t.Fatalf("nf4=%v: peak RSS %v", nf4, r.PeakRSSMiB)
		}
	}
	if _, err := RunLoRA(LoRARun{Shape: Shapes["tiny-base"], ModelDir: dir, Threads: 1, Steps: 1}); err == nil {
		t.Fatal("a folder of another shape was accepted")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
