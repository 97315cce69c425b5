package recipe

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train/commtest"
	"github.com/ftune/ftune/train/dpo"
)

// preferenceDPOptions are a DPO or KTO run for comparing workers with one
// process: 40 records, a quarter held out (5 validation batches of 2, so
// one worker validates 3 and the other 2), 4 micro-batches a step (two
// per worker: a worker's figures are a sum of two), 15 micro-batches an
// epoch (step 4 is short: 3 micro-batches, two on rank 0 and one on rank
// 1), validation every 2 steps, every step logged, LoRA dropout (the
// default 0.05) and AdamW.
func preferenceDPOptions(t *testing.T, o Options) Options {
	o.Steps, o.BatchSize, o.GradAccum, o.ValSplit = 5, 2, 4, 0.25
	o.EvalEvery, o.EvalMaxBatches, o.Schedule, o.WarmupSteps, o.LogEvery = 2, 0, "constant", 0, 1
	return o
}

// preferenceKeys are the logged figures a preference run's workers must
// share with one process: the step's loss and gradient norm, its DPO or
// KTO figures, and the validations'.
func preferenceKey(k string) bool {
	for _, p := range []string{"train/loss", "train/grad_norm", "train/rewards/", "train/logps/", "train/kl", "val/"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// comparePreferenceRuns checks that a data-parallel preference run is one
// process's bit for bit: per-step losses, every logged step and
// validation figure of metrics.jsonl (the DPO or KTO rewards among them),
// the validations before and after training, and every adapter tensor.
func comparePreferenceRuns(t *testing.T, one, many *Result, want []string) {
	t.Helper()
	compareRunsWithin(t, one, many, 0, 0)
	read := func(r *Result) []track.Record {
		recs, err := track.ReadMetrics(filepath.Join(r.RunDir, track.MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	a, b := read(one), read(many)
	if len(a) != len(b) {
		t.Fatalf("metrics.jsonl: %d records from one process, %d from the workers", len(a), len(b))
	}
	seen := map[string]int{}
	for i := range a {
		if a[i].Step != b[i].Step {
			t.Fatalf("metrics.jsonl record %d: step %d from one process, %d from the workers", i, a[i].Step, b[i].Step)
		}
		for k, v := range a[i].Metrics {
			if !preferenceKey(k) {
				continue
			}
			seen[k]++
			if w, ok := b[i].Metrics[k]; !ok {
				t.Errorf("step %d %s: one process %.17g, workers none", a[i].Step, k, v)
			} else if w != v {
				t.Errorf("step %d %s: one process %.17g, workers %.17g", a[i].Step, k, v, w)
			}
		}
	}
	for _, k := range want {
		if seen[k] == 0 {
			t.Errorf("metrics.jsonl has no %s", k)
		}
	}
	t.Logf("losses %v; validation after %v", one.Losses, one.After.Val)
}

// TestPreferenceDataParallelMatchesOneProcess: two workers, each running
// whole micro-batches of every step, train DPO (the sigmoid loss, and
// orpo, without a reference) and KTO as one process does, bit for bit:
// the losses, the logged rewards of every step (the whole step's, not
// rank 0's share), the validations during, before and after training,
// and the adapters.
func TestPreferenceDataParallelMatchesOneProcess(t *testing.T) {
	dpoKeys := []string{"train/rewards/chosen", "train/rewards/rejected", "train/rewards/margins", "train/rewards/accuracies", "train/logps/chosen", "train/logps/rejected", "val/loss", "val/rewards/accuracies"}
	for _, tc := range []struct {
		name    string
		options func(t *testing.T) Options
		want    []string
	}{
		{"dpo sigmoid", func(t *testing.T) Options { return dpoOptions(t, "dp", true) }, dpoKeys},
		{"dpo orpo", func(t *testing.T) Options {
			o := dpoOptions(t, "orpo", false)
			o.DPOLossTypes = []string{dpo.LossORPO}
			return o
		}, dpoKeys},
		{"kto", func(t *testing.T) Options { return ktoOptions(t, "kto") },
			[]string{"train/rewards/chosen", "train/rewards/rejected", "train/rewards/margins", "train/logps/chosen", "train/kl", "val/loss", "val/kl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := preferenceDPOptions(t, tc.options(t))
			one, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			o.OutDir = t.TempDir()
			var log strings.Builder
			o.Log = &log
			many := runWorkers(t, o, 2)
			comparePreferenceRuns(t, one, many, tc.want)
			if !strings.Contains(log.String(), "on 2 data-parallel workers (commtest:2 goroutines); each runs 2 of every step's 4 micro-batches") {
				t.Errorf("rank 0's log does not say how the workers share a step:\n%s", log.String())
			}
		})
	}
}

// TestPreferenceDataParallelRefusesRowSplit: DPO and KTO on workers that
// would split each micro-batch's rows (grad_accum not a multiple of the
// workers) are refused on every worker before anything loads, with the
// reason and the fix.
func TestPreferenceDataParallelRefusesRowSplit(t *testing.T) {
	for _, o := range []Options{dpoOptions(t, "rows", true), ktoOptions(t, "rows")} {
		o.GradAccum = 3
		errs := commtest.Run(2, func(c dist.Comm) error {
			w := o
			w.Comm = c
			_, err := Run(context.Background(), w)
			return err
		})
		want := "training.objective " + o.Objective + " on 2 data-parallel workers with training.grad_accum 3, not a multiple of them: the workers would split each micro-batch's rows"
		for r, err := range errs {
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "make grad_accum a multiple of 2") {
				t.Errorf("%s, rank %d: %v\nwant %q and the fix", o.Objective, r, err, want)
			}
		}
	}
}

// TestPreferenceDataParallelResumesOnOneProcess: a DPO run checkpointed
// by two workers resumes on one process and ends as one uninterrupted
// process does: the same losses and adapters, bit for bit.
func TestPreferenceDataParallelResumesOnOneProcess(t *testing.T) {
	o := preferenceDPOptions(t, dpoOptions(t, "resume", true))
	o.Steps, o.EvalEvery = 4, 0
	one, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.OutDir, o.Steps = t.TempDir(), 2
	first := runWorkers(t, o, 2)
	o.ResumeDir, o.Steps = first.RunDir, 4
	last, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(last.Losses, one.Losses) {
		t.Errorf("losses: two workers then one process %v, one process %v", last.Losses, one.Losses)
	}
	x, y := adapterTensors(t, one), adapterTensors(t, last)
	if len(x) == 0 || len(x) != len(y) {
		t.Fatalf("adapter tensors: %d from one process, %d resumed", len(x), len(y))
	}
	for k, v := range x {
		if !slices.Equal(v, y[k]) {
			t.Errorf("adapter tensor %s differs between one process and the run resumed from two workers' checkpoint", k)
		}
	}
}

// TestPreferenceDataDigest: what workers compare of their data tells
// preference pairs and KTO examples apart: another token, a desirable
// example made undesirable, a pair moved from training to validation.
func TestPreferenceDataDigest(t *testing.T) {
	pairs := func() []dpo.Pair {
		return []dpo.Pair{{Prompt: []int32{1, 2}, Chosen: []int32{3}, Rejected: []int32{4, 5}}, {Prompt: []int32{6}, Chosen: []int32{7}, Rejected: []int32{8}}}
	}
	base := (&dataset{subjects: []string{"s"}, pairs: pairs()}).digest()
	if again := (&dataset{subjects: []string{"s"}, pairs: pairs()}).digest(); again != base {
		t.Errorf("the same pairs: digests %s and %s", base, again)
	}
	token := pairs()
	token[1].Rejected[0] = 9
	desirable := (&dataset{subjects: []string{"s"}, pairs: []dpo.Pair{{Prompt: []int32{1}, Chosen: []int32{2}}}}).digest()
	for name, got := range map[string]string{
		"a token":     (&dataset{subjects: []string{"s"}, pairs: token}).digest(),
		"the split":   (&dataset{subjects: []string{"s"}, pairs: pairs()[:1], valPairs: pairs()[1:]}).digest(),
		"a KTO label": (&dataset{subjects: []string{"s"}, pairs: []dpo.Pair{{Prompt: []int32{1}, Rejected: []int32{2}}}}).digest(),
	} {
		if got == base || name == "a KTO label" && got == desirable {
			t.Errorf("%s differs, the digest does not: %s", name, got)
		}
	}
}

// TestPreferenceWorkersCompareData: DPO workers whose preference files
// differ (rank 1 reads one pair fewer) all refuse to train, rank 0 saying
// that the training data differ.
func TestPreferenceWorkersCompareData(t *testing.T) {
	o := dpoOptions(t, "differ", true)
	o.GradAccum = 2
	other := o
	other.DataFiles = []string{writePreferences(t, t.TempDir(), "chemistry", 39, true)}
	errs := commtest.Run(2, func(c dist.Comm) error {
		w := o
		if c.Rank() == 1 {
			w = other
			w.OutDir = t.TempDir()
		}
		w.Comm = c
		_, err := Run(context.Background(), w)
		return err
	})
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d trained on other data than rank 0's", r)
		}
	}
	t.Logf("rank 0: %v", errs[0])
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "rank 1 differs from rank 0 before training") || !strings.Contains(errs[0].Error(), "the training data differ") {
		t.Errorf("rank 0: %v; want it to name rank 1 and the training data", errs[0])
	}
}
