package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
)

// overBudgetAnswer is longer than a chat template may build a string
// (chat.DefaultLimits.MaxValue, 16 MiB): rendering a conversation that
// holds it fails with chat.ErrBudget, the record's own fault.
var overBudgetAnswer = strings.Repeat("x", 17<<20)

// writeOverBudgetSubject writes a subject folder of preference records
// under root: train.jsonl of the chemistry preferences with an over-budget
// record as line 5, val.jsonl of eight of them with one as line 2.
func writeOverBudgetSubject(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "chem")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(writePreferences(t, t.TempDir(), "chemistry", 40, true))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	// with is recs with a record asking q whose chosen answer is over the
	// budget as line at.
	with := func(recs []string, at int, q string) []byte {
		bad, _ := json.Marshal(map[string]any{
			"prompt":   []map[string]string{{"role": "user", "content": q}},
			"chosen":   []map[string]string{{"role": "assistant", "content": overBudgetAnswer}},
			"rejected": []map[string]string{{"role": "assistant", "content": "short"}},
		})
		out := append(append(append([]string(nil), recs[:at-1]...), string(bad)+"\n"), recs[at-1:]...)
		return []byte(strings.Join(out, ""))
	}
	if err := os.WriteFile(filepath.Join(dir, "train.jsonl"), with(lines[:32], 5, "long?"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "val.jsonl"), with(lines[32:], 2, "longer?"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPreferenceSkipBadOverBudget: data.skip_bad reaches preference
// records, under dpo and under kto (which unpairs the pairs), from a run
// file through FromConfig. A pair whose answer is over the chat
// template's budget fails the run naming its file and line; with skip_bad
// the run skips it, in the training and in the validation split, says so
// as supervised data says it (saySkippedTokenizing), and trains on the
// rest.
func TestPreferenceSkipBadOverBudget(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	root := t.TempDir()
	writeOverBudgetSubject(t, root)
	for _, objective := range []string{ObjectiveDPO, ObjectiveKTO} {
		t.Run(objective, func(t *testing.T) { preferenceSkipBad(t, root, objective) })
	}
}

func preferenceSkipBad(t *testing.T, root, objective string) {
	run := func(skip bool) (*Result, string, error) {
		dir := t.TempDir()
		yml := "model: {path: tiny-base}\n" +
			"data: {root: " + root + ", max_length: 64, skip_bad: " + map[bool]string{true: "true", false: "false"}[skip] + "}\n" +
			"training:\n  objective: " + objective + "\n  batch_size: 2\n  max_steps: 2\n" +
			"  eval: {max_batches: 1, generation: {questions: 0}}\n" +
			"  tracking: {output_dir: " + dir + ", tensorboard: false}\n"
		path := filepath.Join(dir, "run.yaml")
		if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		o, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		o.Log = &log
		res, err := Run(context.Background(), o)
		return res, log.String(), err
	}
	if _, log, err := run(false); err == nil || !strings.Contains(err.Error(), filepath.Join("chem", "train.jsonl")+":5: ") {
		t.Fatalf("without skip_bad: %v, want the run refused naming train.jsonl:5\n%s", err, log)
	}
	res, log, err := run(true)
	if err != nil {
		t.Fatalf("skip_bad: %v\n%s", err, log)
	}
	for _, want := range []string{
		"data: subject chem: 1 records skipped while tokenizing (data.skip_bad), of 33; " + filepath.Join(root, "chem", "train.jsonl") + ":5: ",
		"data: subject chem (validation): 1 records skipped while tokenizing (data.skip_bad), of 9; " + filepath.Join(root, "chem", "val.jsonl") + ":2: ",
		"over the rendering budget",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	if res.Steps != 2 || len(res.Losses) != 2 {
		t.Errorf("trained %d steps (%d losses), want 2", res.Steps, len(res.Losses))
	}
}
