package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInterruptDataExitStatus: data validate and data prepare stopped by
// Ctrl-C or SIGTERM exited 1, as for bad data, where every other command
// stopped with an error exits 130 (exitCode): the error said
// "interrupted (context canceled)" without wrapping the cancellation.
func TestInterruptDataExitStatus(t *testing.T) {
	root, _ := dataRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as the first Ctrl-C does
	for _, args := range [][]string{{"data", "validate", "--data", root}, {"data", "prepare", "--data", root, "--out", t.TempDir()}} {
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		if code := execute(ctx, cmd, &out); code != exitInterrupted || !strings.Contains(out.String(), "interrupted") {
			t.Errorf("%v: exit status %d, want %d\n%s", args[1], code, exitInterrupted, out.String())
		}
	}
}

// TestInterruptDataPrepareLeavesNothing: a first data prepare interrupted
// while it read and tokenised said "nothing more was written" and left
// the cache folders it had made, empty. They are removed; a folder that
// holds anything (or was there before) is kept.
func TestInterruptDataPrepareLeavesNothing(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&rows, `{"prompt":"What is %d plus %d?","completion":"%d, as anyone who can count will tell you"}`+"\n", i, i, 2*i)
	}
	data := filepath.Join(dir, "big.jsonl")
	if err := os.WriteFile(data, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cache", "tokens") // neither exists yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := runCtx(t, ctx, "data", "prepare", "--data", data, "--out", out)
		done <- err
	}()
	// Interrupted once the subject's cache folder is made, before its
	// 20000 rows are read and tokenised.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(out, "big")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no cache folder made")
		}
		select {
		case err := <-done:
			t.Fatalf("prepare ended before it made its cache folder: %v", err)
		default:
		}
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("prepare finished before the interrupt (%v): the data is too small to interrupt", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("prepare did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); err == nil {
		ents, _ := os.ReadDir(out)
		t.Errorf("an interrupted first prepare left its folders (%s holds %v)", out, ents)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the data file: %v", err)
	}
}
