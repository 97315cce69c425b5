package recipe

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/nn"
)

// tinyOptions is a short CPU run on tiny-base and the bundled subjects.
func tinyOptions(t *testing.T) Options {
	t.Helper()
	o := Defaults()
	var err error
	if o.ModelDir, err = assets.Model(assets.TinyBase); err != nil {
		t.Fatal(err)
	}
	if o.DataRoot, err = assets.Subjects(); err != nil {
		t.Fatal(err)
	}
	o.OutDir, o.Device = t.TempDir(), "cpu"
	o.Steps, o.WarmupSteps, o.EvalEvery, o.CheckpointEvery = 3, 1, 3, 3
	o.BatchSize, o.SeqLen, o.EvalQuestions, o.Samples = 4, 128, 0, 0
	return o
}

// TestResourceBombsRefusedBeforeAllocating: a rank of 10^8, a sequence of
// 10^8 tokens and a billion-row batch used to take the machine down; they
// are refused in well under a second, having allocated next to nothing.
func TestResourceBombsRefusedBeforeAllocating(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"rank", func(o *Options) { o.R = 100000000 }, "training.lora.r 100000000 exceeds the dimensions of the adapted layer k_proj (256 → 128)"},
		{"sequence", func(o *Options) { o.SeqLen = 100000000 }, "data.max_length 100000000 exceeds the model's max_position_embeddings (1024"},
		{"batch", func(o *Options) { o.BatchSize = 1000000000 }, "training.batch_size 1000000000 is more rows than one micro-batch can hold"},
		{"sequence allowed, memory refused", func(o *Options) { o.SeqLen, o.AllowLongerThanModel = 100000000, true }, "at its peak, RAM has"},
		{"rank of a named target", func(o *Options) { o.R, o.Targets = 300, []string{"q_proj", "down_proj"} }, "layer q_proj (256 → 256)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tinyOptions(t)
			tc.set(&o)
			var log bytes.Buffer
			o.Log = &log
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Run(context.Background(), o)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if tc.name == "sequence allowed, memory refused" && memAvailable() == 0 {
				// No /proc/meminfo: the plan is printed, not enforced.
				if !strings.Contains(log.String(), "available memory unknown") {
					t.Fatalf("log lacks the unknown-memory note:\n%s", log.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if took > 500*time.Millisecond {
				t.Errorf("refused after %v, want well under a second", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB before refusing", alloc>>20)
			}
		})
	}
}

// TestMemoryRefusalNamesTheSetting: a plan over the machine's memory names
// the numbers, what to lower and the override.
func TestMemoryRefusalNamesTheSetting(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := tinyOptions(t)
	o.BatchSize = 60000
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevice("cpu", "auto")
	if err != nil {
		t.Fatal(err)
	}
	p := o.memoryPlan(cfg, d)
	p.Available = p.Peak / 2
	if got := p.lowerWhat(&o); !strings.Contains(got, "lower training.batch_size (60000) or data.max_length (128)") {
		t.Fatalf("lowerWhat: %q", got)
	}
	if memAvailable() == 0 {
		return
	}
	err = o.preflight(&bytes.Buffer{})
	for _, want := range []string{"the run needs about", "GiB at its peak, RAM has", "lower training.batch_size (60000)", "training.ignore_memory_estimate: true"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want %q", err, want)
		}
	}
	o.IgnoreMemoryEstimate = true
	var log bytes.Buffer
	if err := o.preflight(&log); err != nil || !strings.Contains(log.String(), "training anyway (training.ignore_memory_estimate)") {
		t.Fatalf("override: %v\n%s", err, log.String())
	}
}

// memoryChild is set in the process TestMemoryEstimateMatchesPeak starts:
// it runs the short training whose peak is measured.
const memoryChild = "FTUNE_RECIPE_MEMORY_CHILD"

// estimateFactor is how far the CPU estimate may be from the measured
// peak RSS, either way. The estimate counts tensors; the measured peak
// adds what Go's collector has not yet returned, which depends on timing;
// calibrated on tiny-base at 1.0-1.35 (the estimate errs high). It was
// 1.6 while validation left garbage the plan does not count: each batch's
// logits read back through a fresh copy, and the training's pool buffers
// dropped at the end of Fit under a collector goal set while they were
// live (the default run measured 265 MiB against 191, a ratio of 0.72);
// without them it measures 194-226 MiB (0.84-0.99).
const estimateFactor = 1.35

// TestMemoryEstimateMatchesPeak runs a short tiny-base training in a child
// process and compares its peak resident memory with the printed estimate.
func TestMemoryEstimateMatchesPeak(t *testing.T) {
	if os.Getenv(memoryChild) != "" {
		o := tinyOptions(t)
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS from getrusage is compared on Linux")
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := tinyOptions(t)
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevice("cpu", "auto")
	if err != nil {
		t.Fatal(err)
	}
	plan := o.memoryPlan(cfg, d)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryEstimateMatchesPeak$")
	cmd.Env = append(os.Environ(), memoryChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child run: %v\n%s", err, out)
	}
	peak := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) * 1024
	ratio := plan.Peak / peak
	t.Logf("estimate %s, measured peak %s, ratio %.2f", gib(plan.Peak), gib(peak), ratio)
	if ratio > estimateFactor || ratio < 1/estimateFactor {
		t.Fatalf("estimate %s vs measured peak %s: ratio %.2f outside [1/%.2f, %.2f]\n%s", gib(plan.Peak), gib(peak), ratio, estimateFactor, estimateFactor, plan)
	}
}

// TestCollectorNote: a CPU plan that fits only if the heap stays near what
// is live gets a note when the process has no soft memory limit, and none
// with a limit, on a GPU, or with room for the heap to double.
func TestCollectorNote(t *testing.T) {
	plan := MemoryPlan{Peak: 10 << 30, Available: 16 << 30}
	if note := collectorNote(plan, deviceFacts{}, math.MaxInt64); !strings.Contains(note, "no soft memory limit") || !strings.Contains(note, "10.0 GiB live") {
		t.Errorf("no limit, 10 of 16 GiB: %q", note)
	}
	for name, c := range map[string]struct {
		plan  MemoryPlan
		f     deviceFacts
		limit int64
	}{
		"a limit":        {plan, deviceFacts{}, 14 << 30},
		"a GPU":          {plan, deviceFacts{gpu: true}, math.MaxInt64},
		"room to double": {MemoryPlan{Peak: 7 << 30, Available: 16 << 30}, deviceFacts{}, math.MaxInt64},
		"memory unknown": {MemoryPlan{Peak: 10 << 30}, deviceFacts{}, math.MaxInt64},
	} {
		if note := collectorNote(c.plan, c.f, c.limit); note != "" {
			t.Errorf("%s: %q", name, note)
		}
	}
}

// TestCollectorPacing: a CPU run whose frozen weights and recycled step
// buffers are most of its plan (an 8B model under QLoRA; tiny-base, whose
// activations are most of it) lowers GOGC so the heap grows by the rest of
// the plan, not by them again, and says so; a GOGC variable or
// PaceCollector off leaves it alone.
func TestCollectorPacing(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	o := tinyOptions(t)
	tiny, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	tp := o.planFor(tiny, deviceFacts{})
	if pct, ok := collectorPercent(tp, false, ""); pct != int(math.Round(100*(tp.Peak-tp.Weights-tp.Activations-tp.Logits)/tp.Peak)) || ok != (pct < halfCollectorPercent) {
		t.Errorf("tiny-base (%s): GOGC %d (ok %v), want the runtime's and adapters' share, paced below %d", tp, pct, ok, halfCollectorPercent)
	}
	big, err := nn.ParseConfig([]byte(`{"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
		"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}`))
	if err != nil {
		t.Fatal(err)
	}
	o.Load4Bit, o.GradCheckpointing, o.BatchSize, o.SeqLen = true, true, 1, 128
	o.IgnoreMemoryEstimate = true // the plan, not this machine's memory, is under test
	plan := o.planFor(big, deviceFacts{})
	pct, ok := collectorPercent(plan, false, "")
	want := int(math.Round(100 * (plan.Peak - plan.Weights - plan.Activations - plan.Logits) / plan.Peak))
	if !ok || pct != want || pct < minCollectorPercent || pct >= halfCollectorPercent {
		t.Fatalf("8B QLoRA plan (%s): GOGC %d (ok %v), want %d", plan, pct, ok, want)
	}
	if pct, _ := collectorPercent(tp, true, ""); pct != int(math.Round(100*(tp.Peak-tp.Weights)/tp.Peak)) {
		t.Errorf("tiny-base without the pool: GOGC %d, want the share of all but the weights", pct)
	}
	if _, ok := collectorPercent(plan, false, "200"); ok {
		t.Error("GOGC=200 in the environment was overridden")
	}
	if pct, _ := collectorPercent(MemoryPlan{Peak: 10 << 30, Weights: 10<<30 - 1<<20}, false, ""); pct != minCollectorPercent {
		t.Errorf("weights all of the plan: GOGC %d, want the floor %d", pct, minCollectorPercent)
	}

	for _, c := range []struct {
		name string
		pace bool
		env  string
		want int
	}{
		{"paced", true, "", want},
		{"GOGC set", true, "300", 100},
		{"not asked", false, "", 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOGC", c.env)
			debug.SetGCPercent(100)
			o.PaceCollector = c.pace
			var log bytes.Buffer
			if err := o.planMemory(big, deviceFacts{}, &log); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetGCPercent(100); got != c.want {
				t.Errorf("GOGC is %d after planning, want %d\n%s", got, c.want, log.String())
			}
			said := strings.Contains(log.String(), fmt.Sprintf("Go's collector paced at GOGC=%d", want))
			if said != (c.want != 100) {
				t.Errorf("the log says the pacing: %v, want %v\n%s", said, c.want != 100, log.String())
			}
		})
	}
}
