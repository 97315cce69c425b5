package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPreparedCacheServesADefaultRun: `ftune data prepare` caches a data
// file whole and says how many examples making it cut (again when it is
// up to date, from the cache's record); a default run, which holds out a
// tenth of the file for validation, trains on that cache (its log says so,
// with the same counts, and reads no record of the file) instead of
// tokenizing the file again into a cache of its own.
func TestPreparedCacheServesADefaultRun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 60 {
		answer := fmt.Sprint(2 * i)
		if i%4 == 0 { // longer than the 32-token rows: truncated
			answer = strings.Repeat("and so on ", 12)
		}
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%s"}]}`+"\n", i, i, answer)
	}
	data := filepath.Join(dir, "sums.jsonl")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "tokens")
	counts := regexp.MustCompile(`60 documents +\d+ tokens \((\d+) truncated, 0 dropped\)`)
	var truncated string
	for i, state := range []string{"(written)", "(up to date)"} {
		out, err := run(t, "data", "prepare", "--data", data, "--out", cache, "--seq-len", "32")
		m := counts.FindStringSubmatch(out)
		if err != nil || !strings.Contains(out, state) || m == nil || m[1] == "0" || i > 0 && m[1] != truncated {
			t.Fatalf("prepare %d: %v\n%s", i, err, out)
		}
		truncated = m[1]
	}
	out, err := run(t, "train", "--data", data, "--token-cache", cache, "--max-steps", "1", "--batch-size", "2", "--seq-len", "32",
		"--eval-questions", "0", "--output", dir, "--no-progress", "--set", "training.eval.max_batches=1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "unchanged since its token cache") || strings.Contains(out, "shape chat (detected)") {
		t.Errorf("the run read the data file instead of its prepared cache:\n%s", out)
	}
	if !regexp.MustCompile(`subject sums +54 examples, +\d+ tokens \(\d+ truncated, 0 dropped; from the token cache\)`).MatchString(out) || !strings.Contains(out, "6 of 60 training examples held out") {
		t.Errorf("the run's subject line does not give the cache's counts:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "sums", "*"))
	if len(files) != 1 || filepath.Base(files[0]) != "train.tokens" {
		t.Errorf("cache files %v, want the prepared train.tokens alone", files)
	}
}

// TestRunFileTokenCache: data.token_cache in a run file (a relative path)
// is where `ftune data prepare -c` writes and where the run reads; the
// run's config.yaml records it absolute, so that `ftune eval` of its
// adapter, from another folder, reads the same cache instead of
// tokenizing the data again.
func TestRunFileTokenCache(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%d"}]}`+"\n", i, i, 2*i)
	}
	data := filepath.Join(dir, "sums.jsonl")
	runFile := filepath.Join(dir, "run.yaml")
	yaml := "data:\n  files: [" + data + "]\n  token_cache: tokens\n  max_length: 32\ntraining:\n  max_steps: 1\n  batch_size: 2\n  eval:\n    max_batches: 1\n    generation:\n      questions: 0\n  tracking:\n    output_dir: " + dir + "\n"
	for _, f := range []struct{ path, text string }{{data, b.String()}, {runFile, yaml}} {
		if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir) // tokens is relative to where the commands run
	cache := filepath.Join(dir, "tokens", "sums", "train.tokens")
	if out, err := run(t, "data", "prepare", "-c", runFile); err != nil || !strings.Contains(out, "(written)") {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("prepare -c did not write into data.token_cache: %v", err)
	}
	out, err := run(t, "train", "-c", runFile, "--no-progress")
	if err != nil || !strings.Contains(out, "unchanged since its token cache "+cache) {
		t.Fatalf("train did not read the prepared cache: %v\n%s", err, out)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(runs) != 1 {
		t.Fatalf("run folders %v", runs)
	}
	recorded, err := os.ReadFile(filepath.Join(runs[0], "config.yaml"))
	if err != nil || !strings.Contains(string(recorded), "token_cache: "+filepath.Join(dir, "tokens")) {
		t.Fatalf("config.yaml does not record the cache's absolute path: %v\n%s", err, recorded)
	}
	t.Chdir(t.TempDir())
	out, err = run(t, "eval", "--adapter", filepath.Join(runs[0], "adapter"), "--questions", "0")
	if err != nil || !strings.Contains(out, "unchanged since its token cache "+cache) || strings.Contains(out, "shape chat (detected)") {
		t.Errorf("eval did not read the run's token cache: %v\n%s", err, out)
	}
}

// TestPrepareOutExpandsAsAPathKey: --out stands in for data.token_cache,
// so it is expanded as that path key is (config.ExpandPath: a leading ~/,
// then environment variables): prepare --out and train --token-cache
// name the same folder. It was taken as written, making ./~/tcx.
func TestPrepareOutExpandsAsAPathKey(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	home, vars, work := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("FTUNE_TEST_TOKENS", vars)
	t.Chdir(work)
	data := filepath.Join(work, "sums.jsonl")
	if err := os.WriteFile(data, []byte(`{"prompt":"What is 1 plus 1?","completion":"2"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for out, want := range map[string]string{
		"~/tcx":                  filepath.Join(home, "tcx", "sums", "train.tokens"),
		"$FTUNE_TEST_TOKENS/tcx": filepath.Join(vars, "tcx", "sums", "train.tokens"),
	} {
		if log, err := run(t, "data", "prepare", "--data", data, "--out", out, "--seq-len", "32"); err != nil || !strings.Contains(log, want) {
			t.Errorf("prepare --out %s: %v; want %s written and named:\n%s", out, err, want, log)
		}
		if _, err := os.Stat(want); err != nil {
			t.Errorf("prepare --out %s: %v", out, err)
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 1 {
		t.Errorf("prepare wrote into the working folder: %v", entries)
	}
}
