package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ftune eval --objective dpo measures the DPO loss and rewards on a subject
// root's preference pairs (the base alone is its own reference: loss
// log 2, margin 0); a bad objective and a bad beta are refused naming the
// flag.
func TestEvalObjectiveFlag(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "prefs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, w := range []string{"Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna", "Prague", "Oslo", "Bern", "Dublin"} {
		b.WriteString(`{"prompt":[{"role":"user","content":"Capital of France?"}],"chosen":[{"role":"assistant","content":"Paris"}],"rejected":[{"role":"assistant","content":"` + w + ` city"}]}` + "\n")
	}
	if err := os.WriteFile(filepath.Join(root, "prefs", "val.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "prefs", "train.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "eval", "--data", root, "--objective", "dpo", "--dpo-beta", "0.5")
	if err != nil || !strings.Contains(out, "validation pairs: DPO loss 0.6931  reward accuracy 0.000  margin 0.0000") {
		t.Fatalf("eval --objective dpo: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--objective", "orpo"}, `--objective orpo: training.objective: "orpo" is not one of sft, dpo`},
		{[]string{"--objective", "dpo", "--dpo-beta", "-1"}, "--dpo-beta -1: training.dpo.beta: must be > 0"},
	} {
		out, err := run(t, append([]string{"eval", "--data", root}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v\n%s\nwant %q", tc.args, err, out, tc.want)
		}
	}
}
