package recipe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
)

// quickOptions is a run of a few steps on one subject, without questions.
func quickOptions(t *testing.T, name string) Options {
	o := Defaults()
	o.ModelDir, o.DataRoot, o.OutDir, o.RunName = tinyBase, subjects, t.TempDir(), name
	o.Steps, o.BatchSize, o.SeqLen, o.WarmupSteps, o.EvalEvery, o.EvalQuestions, o.Samples = 2, 2, 64, 0, 0, 0, 0
	o.CheckpointEvery, o.EvalMaxBatches = 0, 1
	o.Subjects = []string{"chemistry"}
	return o
}

// cancelOn writes to w and calls cancel once a write holds line.
type cancelOn struct {
	w      io.Writer
	line   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.line)) {
		c.cancel()
	}
	return c.w.Write(p)
}

// TestInterruptWhileLoading: Ctrl-C while the data is prepared stops the
// run with an error that says nothing was saved (no run folder exists yet).
func TestInterruptWhileLoading(t *testing.T) {
	o := quickOptions(t, "load")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, o)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was saved") {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.OutDir, "load")); !os.IsNotExist(err) {
		t.Errorf("an interrupted load left a run folder: %v", err)
	}
}

func summaryOf(t *testing.T, dir string) track.RunSummary {
	t.Helper()
	s, err := track.Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRunRecordsHowItEnded: summary.json holds the true status, written
// once by the run folder's owner: interrupted, failed with the error,
// finished with the rule that stopped it.
func TestRunRecordsHowItEnded(t *testing.T) {
	t.Run("interrupted", func(t *testing.T) {
		o := quickOptions(t, "int")
		var log bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Ctrl-C once the run folder is open, before the first step.
		o.Log = cancelOn{w: &log, line: "== training", cancel: cancel}
		if _, err := Run(ctx, o); err != nil {
			t.Fatal(err)
		}
		// Before the first step nothing exists to resume from: say so.
		if !strings.Contains(log.String(), "interrupted before the first step: nothing was trained, no checkpoint was saved") || strings.Contains(log.String(), "--resume") {
			t.Errorf("log after an interrupt before the first step:\n%s", log.String())
		}
		if s := summaryOf(t, filepath.Join(o.OutDir, "int")); s.Status != track.StatusInterrupted {
			t.Errorf("status %q, want interrupted", s.StatusText())
		}
	})
	t.Run("failed", func(t *testing.T) {
		o := quickOptions(t, "fail")
		o.Monitor, o.EarlyStopPatience, o.EvalEvery = "val/bogus", 1, 1
		_, err := Run(context.Background(), o)
		if err == nil {
			t.Fatal("early stopping on a metric validation lacks was accepted")
		}
		s := summaryOf(t, filepath.Join(o.OutDir, "fail"))
		if s.Status != track.StatusFailed || !strings.Contains(s.Reason, "val/bogus") {
			t.Errorf("status %q, want failed naming val/bogus", s.StatusText())
		}
	})
	t.Run("stopped by max_time", func(t *testing.T) {
		o := quickOptions(t, "time")
		o.MaxTime = time.Nanosecond
		var log bytes.Buffer
		o.Log = &log
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		s := summaryOf(t, res.RunDir)
		if s.StatusText() != "finished (stopped: max_time)" {
			t.Errorf("status %q, want finished (stopped: max_time)", s.StatusText())
		}
		if s.Name != "time" || s.Final == nil {
			t.Errorf("summary.json is not the run folder's schema: %+v", s)
		}
	})
}

// TestInterruptDuringEvaluation: Ctrl-C during the evaluation before
// training ends the run there (nothing trained, said so); during the one
// after training it finds the adapter already saved, says so and how to
// finish, and resuming measures it.
func TestInterruptDuringEvaluation(t *testing.T) {
	// interruptAt runs o, interrupted when the log reaches line; the run
	// must end without an error, interrupted.
	interruptAt := func(t *testing.T, o Options, line string) (*Result, string) {
		t.Helper()
		var log bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		o.Log = cancelOn{w: &log, line: line, cancel: cancel}
		res, err := Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if s := summaryOf(t, res.RunDir); s.Status != track.StatusInterrupted {
			t.Errorf("status %q, want interrupted", s.StatusText())
		}
		return res, log.String()
	}
	t.Run("before", func(t *testing.T) {
		res, log := interruptAt(t, quickOptions(t, "before"), "== before training")
		if res.Stopped != "interrupted" || res.Steps != 0 || len(res.Adapters) != 0 || res.Before.Val != nil {
			t.Errorf("result %+v, want interrupted with nothing trained or measured", res)
		}
		if !strings.Contains(log, "interrupted during the evaluation before training: nothing was trained") || strings.Contains(log, "== training") {
			t.Errorf("log:\n%s", log)
		}
	})
	t.Run("after", func(t *testing.T) {
		o := quickOptions(t, "after")
		res, log := interruptAt(t, o, "== after training")
		if res.Stopped != "interrupted" || res.Steps != o.Steps || res.After.Val != nil {
			t.Errorf("result %+v, want %d steps, interrupted, not measured after", res, o.Steps)
		}
		dir := res.Adapters["default"]
		if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); dir == "" || err != nil {
			t.Fatalf("adapter %q not saved before the evaluation: %v", dir, err)
		}
		if !strings.Contains(log, "interrupted during the evaluation after training; the trained adapter is saved ("+dir+"), and resuming measures it") {
			t.Errorf("log:\n%s", log)
		}
		// Without a ResumeHint (the ftune command sets one), the hint is
		// the field, not a command line of whatever program this is.
		if hint := "resuming measures it: resume it with Options.ResumeDir = " + strconv.Quote(res.RunDir); !strings.Contains(log, hint) {
			t.Errorf("log lacks %q:\n%s", hint, log)
		}

		o.ResumeDir, o.Log = res.RunDir, io.Discard
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != o.Steps || res.After.Val == nil {
			t.Errorf("resumed: %d steps, measured after: %v; want %d steps and the measurement", res.Steps, res.After.Val, o.Steps)
		}
		if s := summaryOf(t, res.RunDir); s.Status != track.StatusFinished {
			t.Errorf("resumed: status %q, want finished", s.StatusText())
		}
	})
}

// TestSamplesToLogCoversEverySubject: the answers kept in samples.jsonl
// come from every subject, not the first subject's only.
func TestSamplesToLogCoversEverySubject(t *testing.T) {
	qa := &train.QAReport{}
	for _, s := range []string{"chemistry", "geography", "us-history"} {
		for i := 0; i < 6; i++ {
			qa.Results = append(qa.Results, train.QAResult{QA: train.QA{Subject: s}})
		}
	}
	got := map[string]int{}
	for _, r := range samplesToLog(qa, 2) {
		got[r.Subject]++
	}
	if len(got) != 3 || got["us-history"] != 2 || got["chemistry"] != 2 {
		t.Errorf("samples per subject %v, want 2 of each of 3", got)
	}
}

// TestResumeOnEditedData: a resume says that the data changed since the
// run started (naming the file; a data.template file too, which it said
// nothing of, though the tokens change with it), deletes the leftovers of
// killed writes, and does not log a second "before" evaluation.
func TestResumeOnEditedData(t *testing.T) {
	data := t.TempDir()
	copyDir(t, filepath.Join(subjects, "chemistry"), filepath.Join(data, "chemistry"))
	tmpl := filepath.Join(t.TempDir(), "turns.jinja")
	const turns = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
	if err := os.WriteFile(tmpl, []byte(turns), 0o644); err != nil {
		t.Fatal(err)
	}
	o := quickOptions(t, "edit")
	o.DataRoot, o.Template = data, tmpl
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	train := filepath.Join(data, "chemistry", "train.jsonl")
	b, err := os.ReadFile(train)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(train, bytes.Replace(b, []byte("\n"), []byte("\n\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmpl, []byte(strings.ReplaceAll(turns, "\n{{ m.content }}", ": {{ m.content }}")), 0o644); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(res.RunDir, "checkpoints", ".tmp-step-00000003-12345")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.ResumeDir, o.Log, o.Steps = res.RunDir, &log, o.Steps+1
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"warning: the data changed since the run started (changed ", "chemistry/train.jsonl, changed ", "turns.jinja)", "removed 1 leftover(s)", ".tmp-step-00000003-12345"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("resume log lacks %q:\n%s", want, log.String())
		}
	}
	recs, err := track.ReadMetrics(filepath.Join(res.RunDir, track.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	befores, afters := 0, 0
	for _, r := range recs {
		if _, ok := r.Metrics[track.EvalBeforePrefix+"val/loss"]; ok {
			befores++
		}
		if _, ok := r.Metrics[track.EvalAfterPrefix+"val/loss"]; ok {
			afters++
		}
	}
	if befores != 1 || afters != 1 {
		t.Errorf("metrics.jsonl holds %d eval_before and %d eval_after records, want 1 each", befores, afters)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// panicOn panics when the log shows a marker (a bug deep in a run).
type panicOn struct{ marker string }

func (p panicOn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(p.marker)) {
		panic("injected fault")
	}
	return len(b), nil
}

// TestRunPanicRecordedAsFailed: a panic after the run folder opened leaves
// it "failed" with the panic, not "finished".
func TestRunPanicRecordedAsFailed(t *testing.T) {
	o := quickOptions(t, "panic")
	o.Log = panicOn{"== training"}
	func() {
		defer func() {
			if p := recover(); p != "injected fault" {
				t.Errorf("recovered %v, want the injected fault to go on up", p)
			}
		}()
		_, _ = Run(context.Background(), o)
	}()
	s := summaryOf(t, filepath.Join(o.OutDir, "panic"))
	if s.Status != track.StatusFailed || !strings.Contains(s.Reason, "injected fault") {
		t.Errorf("status %q, want failed with the panic", s.StatusText())
	}
}

// TestGradAccumLongerThanEpochIsNoted: a grad_accum past an epoch's
// micro-batches is said (each step is then one epoch), not left to a
// silently shorter step.
func TestGradAccumLongerThanEpochIsNoted(t *testing.T) {
	o := quickOptions(t, "accum")
	o.GradAccum = 1 << 40
	var log bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Log = cancelOn{w: &log, line: "note: training.grad_accum", cancel: cancel} // no step needs to run
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "note: training.grad_accum 1099511627776 is more than the ") || !strings.Contains(log.String(), "micro-batches of an epoch: each step is one epoch") {
		t.Errorf("no note for a grad_accum longer than an epoch:\n%s", log.String())
	}
}

// TestEndRunRecordsLastCompletedStep: a run interrupted after step 142,
// its last record at step 140 (LogEvery), says 142 steps in summary.json
// (it said 140).
func TestEndRunRecordsLastCompletedStep(t *testing.T) {
	run, err := track.NewRun(t.TempDir(), "r", nil, track.WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Log(140, map[string]float64{"train/loss": 1}); err != nil {
		t.Fatal(err)
	}
	tr := &train.Trainer{}
	tr.State.Step = 142
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := endRun(ctx, run, tr, nil); err != nil {
		t.Fatal(err)
	}
	if s := summaryOf(t, run.Dir); s.Steps != 142 || s.Status != track.StatusInterrupted {
		t.Errorf("summary: %d steps, %s; want 142, interrupted", s.Steps, s.Status)
	}
}
