package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sumsFile writes n sums examples (from start on) to dir/name.jsonl.
func sumsFile(t *testing.T, dir, name string, start, n int) string {
	t.Helper()
	var b strings.Builder
	for i := start; i < start+n; i++ {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%d"}]}`+"\n", i, i, 2*i)
	}
	file := filepath.Join(dir, name+".jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// sumsRun trains run "r" under work/runs on file, from work (so a
// relative file is the run's relative data path), returning its adapter.
func sumsRun(t *testing.T, work, file string, args ...string) (adapter string) {
	t.Helper()
	t.Chdir(work)
	out, err := run(t, append([]string{"train", "--data", file, "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--output", "runs", "--run-name", "r", "--no-progress"}, args...)...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	return filepath.Join(work, "runs", "r", "adapter")
}

// TestEvalRunWithoutConfig: an adapter whose run folder lost its
// config.yaml was evaluated on the bundled subjects without a word (a
// validation loss of other data); it is refused naming the missing file
// and how to name the data, and evaluated when the data is named, with a
// note. A damaged config.yaml is an error naming its line.
func TestEvalRunWithoutConfig(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	work := t.TempDir()
	file := sumsFile(t, work, "sums", 0, 40)
	adapter := sumsRun(t, work, "sums.jsonl")
	cfgFile := filepath.Join(work, "runs", "r", "config.yaml")
	if err := os.Remove(cfgFile); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := exitOf(t, "eval", "--adapter", adapter, "--questions", "0")
	if code != 1 || !strings.Contains(stderr, cfgFile+" is missing") || !strings.Contains(stderr, "--data") || strings.Contains(out, "validation: loss") {
		t.Errorf("eval of an adapter whose run lost config.yaml: exit %d, stderr %q, want 1 naming %s and --data\n%s", code, stderr, cfgFile, out)
	}
	out, err := run(t, "eval", "--adapter", adapter, "--questions", "0", "--data", file)
	if err != nil || !strings.Contains(out, "note: "+cfgFile+" is missing") || !strings.Contains(out, "4 of 40 training examples held out") {
		t.Errorf("eval naming the data: %v\n%s", err, out)
	}
	if err := os.WriteFile(cfgFile, []byte("data:\n  val_split: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := exitOf(t, "eval", "--adapter", adapter, "--questions", "0"); code != 1 || !strings.Contains(stderr, "config.yaml:") {
		t.Errorf("eval with a damaged config.yaml: exit %d, stderr %q, want 1 naming config.yaml:LINE", code, stderr)
	}
}

// TestEvalPerSubjectAdapter: one adapter of a per-subject run
// (RUN/adapters/chemistry) was evaluated on every subject of the run,
// without a word; it is evaluated on its own subject, saying so, and
// --subjects still chooses.
func TestEvalPerSubjectAdapter(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	out, err := run(t, "train", "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.adapters=per-subject", "--set", "training.eval.max_batches=2", "--output", dir, "--run-name", "ps", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	adapter := filepath.Join(dir, "ps", "adapters", "chemistry")
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "1", "--seq-len", "64")
	if err != nil || !strings.Contains(out, "note: "+adapter+" is the run's adapter for subject chemistry: evaluating chemistry alone") ||
		!strings.Contains(out, "questions chemistry") || strings.Contains(out, "questions geography") {
		t.Errorf("eval of the chemistry adapter: %v\n%s\nwant chemistry alone, with a note", err, out)
	}
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "1", "--seq-len", "64", "--subjects", "geography,chemistry")
	if err != nil || strings.Contains(out, "evaluating chemistry alone") || !strings.Contains(out, "questions geography") {
		t.Errorf("eval of the chemistry adapter with --subjects: %v\n%s\nwant the subjects given", err, out)
	}
}

// TestEvalSplitAll: a test file given with --data was evaluated on the
// share train would hold out of it (2 of 20), with no way to evaluate all
// of it. --split all evaluates every example; without it, data that is
// not the run's is said to be evaluated on its held-out share, and why.
func TestEvalSplitAll(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	work := t.TempDir()
	sumsFile(t, work, "sums", 0, 40)
	test := sumsFile(t, work, "test", 100, 20)
	adapter := sumsRun(t, work, "sums.jsonl")

	out, err := run(t, "eval", "--adapter", adapter, "--questions", "0", "--data", test)
	if err != nil || !strings.Contains(out, "2 of 20 training examples held out") || !strings.Contains(out, "--split all") {
		t.Errorf("eval --data test.jsonl: %v\n%s\nwant its held-out share, and --split all named", err, out)
	}
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "0", "--data", test, "--split", "all")
	if err != nil || !strings.Contains(out, "subject test: no validation file; all 20 examples evaluated, none held out") || !strings.Contains(out, "validation: loss") {
		t.Errorf("eval --data test.jsonl --split all: %v\n%s\nwant all 20 evaluated", err, out)
	}
	out, err = run(t, "eval", "--adapter", adapter, "--questions", "0", "--split", "all")
	if err != nil || !strings.Contains(out, "all 40 examples evaluated") || !strings.Contains(out, "warning: --split all: the run trained on") {
		t.Errorf("eval --split all on the run's own data: %v\n%s\nwant all 40, with a warning", err, out)
	}
	var prefs strings.Builder
	for i := range 10 {
		fmt.Fprintf(&prefs, `{"prompt":"What is %d plus %d?","chosen":"%d","rejected":"%d"}`+"\n", i, i, 2*i, 2*i+1)
	}
	if err := os.WriteFile(filepath.Join(work, "prefs.jsonl"), []byte(prefs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "eval", "--data", "prefs.jsonl", "--objective", "dpo", "--split", "all")
	if err != nil || !strings.Contains(out, "all 10 examples evaluated") || !strings.Contains(out, "validation pairs: DPO loss") {
		t.Errorf("eval --objective dpo --split all: %v\n%s\nwant all 10 pairs evaluated", err, out)
	}
	if code, _, stderr := exitOf(t, "eval", "--split", "most"); code != 2 || !strings.Contains(stderr, "--split most") {
		t.Errorf("eval --split most: exit %d, stderr %q, want 2", code, stderr)
	}
}

// TestEvalSaysQuestionsScored: the number of questions asked was never
// said, and --questions above what a test file holds was capped without a
// word.
func TestEvalSaysQuestionsScored(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out, err := run(t, "eval", "--subjects", "us-history", "--questions", "1000", "--seq-len", "64", "--set", "training.eval.max_batches=2")
	if err != nil || !strings.Contains(out, "questions scored: 21 (us-history 21): --questions 1000 asks up to 1000 a subject, and us-history's test file holds 21") {
		t.Errorf("eval --questions 1000: %v\n%s\nwant the 21 questions scored, and why not 1000", err, out)
	}
	out, err = run(t, "eval", "--subjects", "us-history,chemistry", "--questions", "2", "--seq-len", "64", "--set", "training.eval.max_batches=2")
	if err != nil || !strings.Contains(out, "questions scored: 4 (chemistry 2, us-history 2): the first 2 of each subject's test file (--questions 2)") {
		t.Errorf("eval --questions 2: %v\n%s\nwant the 4 questions scored", err, out)
	}
}

// TestUsageExit2: a subject that is not there (--subjects, to eval or
// train) and an imatrix --ctx past the model's positions are bad usage,
// exit 2, as --ctx 0 is; they exited 1.
func TestUsageExit2(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	text := filepath.Join(dir, "cal.txt")
	if err := os.WriteFile(text, []byte("Iron is a metal.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--subjects", "nope", "--questions", "0"}, `--subjects nope: recipe: no subject "nope"`},
		{[]string{"eval", "--set", "data.subjects=[nope]", "--questions", "0"}, `--set data.subjects=[nope]: recipe: no subject "nope"`},
		{[]string{"imatrix", "--text", text, "--ctx", "100000", "--out", filepath.Join(dir, "im.gguf")}, "--ctx 100000: want at most the model's 1024 positions"},
		{[]string{"train", "--subjects", "nope", "--output", dir}, `--subjects nope: recipe: no subject "nope"`},
	} {
		code, _, stderr := exitOf(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("ftune %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestEvalHelpDefaultsAreTheRuns: with --adapter the run's config.yaml
// decides the config keys eval's flags set, so help gives the defaults as
// the run's, else the config's; it showed the config's alone
// (--questions 20, --seq-len 256), which a run of other settings ignores.
func TestEvalHelpDefaultsAreTheRuns(t *testing.T) {
	out, err := run(t, "eval", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(default the run's, else 20)", "(default the run's, else 256)", `(default "the run's, else sft")`} {
		if !strings.Contains(out, want) {
			t.Errorf("eval --help lacks %q:\n%s", want, out)
		}
	}
}
