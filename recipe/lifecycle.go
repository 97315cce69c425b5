package recipe

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
)

// The run folder's lifecycle: how a run ends (endRun), what an interrupt
// saved, what a resume found, which answers the folder keeps.

// printInterrupted says what an interrupted run saved: a checkpoint of
// the last completed step to resume from, or nothing (interrupted before
// the first step).
func (s *session) printInterrupted(t *train.Trainer, runDir string) {
	ck := filepath.Join(runDir, "checkpoints", train.StepDir(t.State.Step))
	if _, err := os.Stat(ck); err != nil {
		fmt.Fprintf(s.log, "\ninterrupted before the first step: nothing was trained, no checkpoint was saved\n")
		return
	}
	fmt.Fprintf(s.log, "\ninterrupted after step %d; the checkpoint is saved (%s): %s\n", t.State.Step, ck, s.o.resumeHint(runDir))
}

// resumeHint is how the log says to continue the run in dir: the caller's
// ResumeHint (the ftune command's names its command line), else the
// field that does it. A command line built here from os.Args[0] would name
// the program that embeds ftune, which has no such command.
func (o Options) resumeHint(dir string) string {
	if o.ResumeHint != nil {
		return o.ResumeHint(dir)
	}
	return fmt.Sprintf("resume it with Options.ResumeDir = %q", dir)
}

// checkResumedInputs says what a resumed run found in its folder: the
// leftovers of killed writes it deleted, and base model or data files that
// changed since the run started (manifest.json holds their hashes). Edited
// data is a warning (the run continues on it, and the manifest records
// it); another base model is refused: the adapter was trained on the old.
func (s *session) checkResumedInputs(run *track.Run) error {
	if rm := run.Removed(); len(rm) > 0 {
		fmt.Fprintf(s.log, "removed %d leftover(s) of interrupted writes: %s\n", len(rm), strings.Join(rm, ", "))
	}
	beforeInputsHashed()
	ch, err := run.CheckInputsRead(s.startInputs(), s.data.inputs, s.data.reads)
	if err != nil {
		return err
	}
	sayChangedSinceRead(s.log, ch.SinceRead)
	if len(ch.BaseModel) > 0 {
		what := "the base model " + s.o.ModelDir
		if s.o.InitAdapter != "" {
			what += " or the adapter it continues, " + s.o.InitAdapter + ","
		}
		return fmt.Errorf("recipe: resume %s: %s is not the one the run started with (%s); resume with the original, or start a new run", run.Dir, what, strings.Join(ch.BaseModel, ", "))
	}
	if len(ch.Data) > 0 {
		fmt.Fprintf(s.log, "warning: the data changed since the run started (%s); resuming on the edited data\n", strings.Join(ch.Data, ", "))
	}
	return nil
}

// setInputs records the run's inputs in its manifest: the base model's
// files, and the data files as the run read them (what it trains on,
// however they changed since), saying which changed since.
func (s *session) setInputs(run *track.Run) error {
	beforeInputsHashed()
	changed, err := run.SetInputsRead(s.startInputs(), s.data.inputs, s.data.reads)
	sayChangedSinceRead(s.log, changed)
	return err
}

// beforeInputsHashed runs between reading the data and hashing it into
// the manifest (tests write to a data file there).
var beforeInputsHashed = func() {}

// sayChangedSinceRead warns of data files written to after the run read
// them (track.Run.SetInputsRead lists them).
func sayChangedSinceRead(log io.Writer, changed []string) {
	if len(changed) > 0 {
		fmt.Fprintf(log, "warning: data changed after the run read it (%s): the run trains on what it read, which the manifest records\n", strings.Join(changed, "; "))
	}
}

// startInputs are the files a run starts from, hashed into its manifest
// (the base model's) and checked on resume: the model folder and the
// adapter it continues (training.lora.init_from), which is also a DPO
// run's reference.
func (s *session) startInputs() []string {
	if s.o.InitAdapter != "" {
		return []string{s.o.ModelDir, s.o.InitAdapter}
	}
	return []string{s.o.ModelDir}
}

// endRunRecover is endRun for a deferred call: a panic (p, from recover)
// is recorded as a failure before it goes on up, so the folder never reads
// "finished" after a crash.
func endRunRecover(ctx context.Context, run *track.Run, t *train.Trainer, err error, p any) error {
	if p != nil {
		_ = endRun(ctx, run, t, fmt.Errorf("panic: %v", p))
		panic(p)
	}
	return endRun(ctx, run, t, err)
}

// endRun closes the run folder with the status the run ended in: failed
// (with the error), interrupted (ctx cancelled), or finished (with the rule
// that stopped it early, if one did). It returns the run's error, or the
// close's when the run itself succeeded.
func endRun(ctx context.Context, run *track.Run, t *train.Trainer, err error) error {
	status, reason := track.StatusFinished, ""
	switch {
	case err != nil && ctx.Err() != nil:
		status, reason = track.StatusInterrupted, err.Error()
	case err != nil:
		status, reason = track.StatusFailed, err.Error()
	case ctx.Err() != nil || t != nil && interrupted(ctx, t): // another worker's interrupt too
		status = track.StatusInterrupted
	case t != nil && t.State.StopReason != "":
		reason = "stopped: " + t.State.StopReason
	}
	if t != nil {
		// summary.json's steps: the last step completed, which the last
		// logged record (LogEvery) may be short of.
		run.SetStep(t.State.Step)
	}
	if cerr := run.End(status, reason); cerr != nil && err == nil {
		return cerr
	}
	return err
}

// samplesLogged is how many answers per subject the run folder keeps.
const samplesLogged = 4

// samplesToLog picks the first n answers of every subject (the results
// come grouped by subject: the first n overall would show one subject).
func samplesToLog(qa *train.QAReport, n int) []train.QAResult {
	if qa == nil {
		return nil
	}
	var out []train.QAResult
	count := map[string]int{}
	for _, r := range qa.Results {
		if count[r.Subject] < n {
			count[r.Subject]++
			out = append(out, r)
		}
	}
	return out
}
