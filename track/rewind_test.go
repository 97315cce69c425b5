package track

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestResumeRewindsAndCleans: resuming at step 3 cuts metrics.jsonl and
// samples.jsonl back to step 3 (the killed run's later steps and its final
// evaluation go; the first eval_before stays, once), and deletes ftune's
// own temporaries of killed writes, never the user's files.
func TestResumeRewindsAndCleans(t *testing.T) {
	r, err := NewRun(t.TempDir(), "k", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Log(0, map[string]float64{EvalBeforePrefix + "val/loss": 9}))
	for s := 1; s <= 5; s++ {
		must(r.Log(s, map[string]float64{"train/loss": float64(10 - s)}))
	}
	must(r.Log(5, map[string]float64{EvalAfterPrefix + "val/loss": 4}))
	must(r.LogText(2, "samples/a", "early"))
	must(r.LogText(5, "samples/a", "late"))
	crash(r)
	// A record torn by the kill.
	f, err := os.OpenFile(filepath.Join(r.Dir, MetricsFile), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString(`{"step":6,"wall_t`)
	must(err)
	f.Close()
	leftovers := []string{"checkpoints/.tmp-step-00000004-123456/params.safetensors", ".summary.json.tmp-42", "adapter/.adapter_model.safetensors.tmp-7", ".m1.tmp-99/config.json"}
	users := []string{"checkpoints/step-00000003/params.safetensors", "notes.tmp-1", ".tmp-mine", "adapter/adapter_model.safetensors", "my.tmp-3.txt"}
	for _, p := range append(slices.Clone(leftovers), users...) {
		mkFile(t, filepath.Join(r.Dir, p), "x")
	}

	r2, err := ResumeRun(r.Dir, 3, WithTensorBoard(false))
	must(err)
	defer r2.Close()
	recs, err := ReadMetrics(filepath.Join(r.Dir, MetricsFile))
	must(err)
	befores := 0
	for _, rec := range recs {
		if rec.Step > 3 {
			t.Errorf("record of step %d kept: %v", rec.Step, rec.Metrics)
		}
		for k := range rec.Metrics {
			if strings.HasPrefix(k, EvalAfterPrefix) {
				t.Errorf("final evaluation kept: %v", rec.Metrics)
			}
			if strings.HasPrefix(k, EvalBeforePrefix) {
				befores++
			}
		}
	}
	if len(recs) != 4 || befores != 1 {
		t.Errorf("%d records (%d eval_before), want 4 (1)", len(recs), befores)
	}
	samples, err := ReadSamples(filepath.Join(r.Dir, SamplesFile))
	must(err)
	if len(samples) != 1 || samples[0].Text != "early" {
		t.Errorf("samples %+v, want the step-2 one only", samples)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(filepath.Join(r.Dir, p)); !os.IsNotExist(err) {
			t.Errorf("leftover %s not removed", p)
		}
	}
	for _, p := range users {
		if _, err := os.Stat(filepath.Join(r.Dir, p)); err != nil {
			t.Errorf("user file %s: %v", p, err)
		}
	}
	if got := r2.Removed(); len(got) != len(leftovers) {
		t.Errorf("Removed() = %v, want the %d leftovers", got, len(leftovers))
	}
}

// TestCheckInputs: a data file edited since the run started is named; the
// same files read from another folder are no change.
func TestCheckInputs(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	mkFile(t, filepath.Join(data, "a", "train.jsonl"), "1\n")
	mkFile(t, filepath.Join(data, "b", "train.jsonl"), "2\n")
	r, err := NewRun(root, "in", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Nothing recorded yet (a run from before inputs were hashed): no
	// change to report, and the current inputs are recorded.
	if ch, err := r.CheckInputs(nil, []string{data}); err != nil || len(ch.Data)+len(ch.BaseModel) != 0 {
		t.Errorf("no recorded inputs: %v %v, want no change", ch, err)
	}
	if err := r.SetInputs(nil, []string{data}); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(root, "moved")
	mkFile(t, filepath.Join(moved, "a", "train.jsonl"), "1\n")
	mkFile(t, filepath.Join(moved, "b", "train.jsonl"), "2\n")
	if ch, err := r.CheckInputs(nil, []string{moved}); err != nil || len(ch.Data) != 0 {
		t.Errorf("same data elsewhere: %v %v, want no change", ch, err)
	}
	mkFile(t, filepath.Join(data, "b", "train.jsonl"), "2 edited\n")
	mkFile(t, filepath.Join(data, "c", "val.jsonl"), "3\n")
	ch, err := r.CheckInputs(nil, []string{data})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"changed b/train.jsonl", "added c/val.jsonl"}; !slices.Equal(ch.Data, want) {
		t.Errorf("changes %q, want %q", ch.Data, want)
	}
	if ch, _ := r.CheckInputs(nil, []string{data}); len(ch.Data) != 0 {
		t.Errorf("the manifest does not record the current data: %v", ch.Data)
	}
}
