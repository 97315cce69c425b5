package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/format"
)

// dataRoot copies one bundled subject (small) into a temporary root.
func dataRoot(t *testing.T) (root, train string) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	train = filepath.Join(dir, "train.jsonl")
	rec := `{"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}` + "\n"
	if err := os.WriteFile(train, []byte(strings.Repeat(rec, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, train
}

// TestDataPrepareNoticesEditedData: a token cache used after its data file
// changed was reported "(up to date)" and trained on the old tokens; the
// cache is keyed on the data's content now.
func TestDataPrepareNoticesEditedData(t *testing.T) {
	root, train := dataRoot(t)
	out := t.TempDir()
	args := []string{"data", "prepare", "--data", root, "--out", out}
	for i, want := range []string{"(written)", "(up to date)"} {
		got, err := run(t, args...)
		if err != nil || !strings.Contains(got, want) {
			t.Fatalf("run %d: %v\n%s", i, err, got)
		}
	}
	edited := `{"messages":[{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima"}]}` + "\n"
	if err := os.WriteFile(train, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := run(t, args...)
	if err != nil || !strings.Contains(got, "(written)") || !strings.Contains(got, "1 documents") {
		t.Fatalf("after editing the data: %v\n%s", err, got)
	}
}

// TestDataPrepareWarnsOverPositions: examples longer than the model's
// max_position_embeddings (1024 for tiny-base) were accepted without a
// word.
func TestDataPrepareWarnsOverPositions(t *testing.T) {
	root, train := dataRoot(t)
	long := `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 1500) + `"},{"role":"assistant","content":"ok"}]}` + "\n"
	f, err := os.OpenFile(train, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(long)
	f.Close()
	got, err := run(t, "data", "prepare", "--data", root, "--out", t.TempDir(), "--seq-len", "4096")
	if err != nil || !strings.Contains(got, "--seq-len 4096 is more than the model's 1024 positions") ||
		!strings.Contains(got, "1 examples are longer than the model's 1024 positions") || !strings.Contains(got, "train.jsonl:4") {
		t.Fatalf("%v\n%s", err, got)
	}
}

func runCtx(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestDataCommandsHonourInterrupt: SIGINT and SIGTERM cancel the command's
// context (main); validate and prepare ignored it until all the work was
// done. They stop, say so, and prepare leaves no cache behind.
func TestDataCommandsHonourInterrupt(t *testing.T) {
	root, _ := dataRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as the first Ctrl-C does
	start := time.Now()
	out := t.TempDir()
	for _, args := range [][]string{{"data", "validate", "--data", root}, {"data", "prepare", "--data", root, "--out", out}} {
		got, err := runCtx(t, ctx, args...)
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("%v: %v\n%s", args, err, got)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, "tiny")); len(ents) != 0 {
		t.Errorf("prepare left %v", ents)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestCLIReadsParquet: the parquet reader left data/format for its own
// package; the CLI links it, so a .parquet file is read (here: found
// corrupt), not refused as unsupported.
func TestCLIReadsParquet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.parquet")
	if err := os.WriteFile(p, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := format.ReadAll(p, format.Options{})
	if !errors.Is(err, format.ErrMalformed) || errors.Is(err, format.ErrUnsupported) {
		t.Errorf("got %v", err)
	}
}

// TestDataCommandsOnARootOfFiles: ftune train reads a root of data files
// as subjects; validate and prepare work on subject folders and say so
// instead of only "no subject folders".
func TestDataCommandsOnARootOfFiles(t *testing.T) {
	root := t.TempDir()
	rec := `{"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}` + "\n"
	if err := os.WriteFile(filepath.Join(root, "geo.jsonl"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"data", "validate", "--data", root}, {"data", "prepare", "--data", root, "--out", t.TempDir()}} {
		cmd := args[1]
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "work on subject folders only") {
			t.Errorf("data %s on a root of files: %v, want the reason", cmd, err)
		}
	}
}
