package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalDataTakesWhatTrainTakes: eval's --data is train's (data.files):
// a file, a glob or a folder of files is evaluated on the share of it that
// train holds out for validation (it was a subject root: a file failed
// with "subject root: open my.jsonl: not a directory"); a folder of
// subject folders still works, and --data-root is train's too.
func TestEvalDataTakesWhatTrainTakes(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%d"}]}`+"\n", i, i, 2*i)
	}
	file := filepath.Join(dir, "sums.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", file}, "subject sums: no validation file; 4 of 40 training examples held out for validation (data.val_split 0.1, data.seed 42)"},
		{[]string{"--data", filepath.Join(dir, "*.jsonl")}, "4 of 40 training examples held out"},
		{[]string{"--data", dir}, "4 of 40 training examples held out"},
		{[]string{"--data-root", "../../assets/data/subjects", "--subjects", "chemistry"}, "validation: loss"}, // val files: nothing held out
	} {
		out, err := run(t, append([]string{"eval", "--questions", "0"}, c.args...)...)
		if err != nil || !strings.Contains(out, c.want) || !strings.Contains(out, "validation: loss") {
			t.Errorf("eval %v: %v\n%s\nwant a validation loss and %q", c.args, err, out, c.want)
		}
	}
}
