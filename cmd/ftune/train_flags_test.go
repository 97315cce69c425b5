package main

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/ftune/ftune/config"
)

// TestTrainHelpShowsTypes: numeric shortcut flags showed as "string", and
// the back-quoted `ftune data prepare` became --token-cache's placeholder.
func TestTrainHelpShowsTypes(t *testing.T) {
	out, err := run(t, "train", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--batch-size int ", "--lr float ", "--max-time duration ", "--subjects list ", "--eval-questions int ",
		"--data path ", "(repeatable", "--data-root string ", "--token-cache string ", "--precision string "} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--token-cache ftune") {
		t.Errorf("help takes back-quoted text as a placeholder:\n%s", out)
	}
}

// TestShortcutErrorsNameTheFlag: a typed flag still goes through the
// config, whose error names the flag as typed.
func TestShortcutErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct{ args, want []string }{
		{[]string{"--batch-size", "many"}, []string{"--batch-size many: training.batch_size:"}},
		{[]string{"--max-time", "soon"}, []string{"--max-time soon: training.max_time:"}},
		{[]string{"--lr", "0"}, []string{"--lr 0: training.optimizer.lr: must be > 0"}},
		{[]string{"--data", "a.jsonl", "--data-root", "/d"}, []string{`--data ["a.jsonl"]: data.files: set data.root or data.files, not both`}},
	} {
		out, err := run(t, append([]string{"train"}, tc.args...)...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: got %v\n%s\nwant %q", tc.args, err, out, w)
			}
		}
	}
}

// TestDataFlagRepeats: --data is the user's own data, one entry per use.
func TestDataFlagRepeats(t *testing.T) {
	v := &shortcutValue{kind: "path", repeat: true}
	for _, a := range []string{"my.jsonl", "my data/*.csv", `odd"name.json`} {
		if err := v.Set(a); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	if err := config.ApplyFlag(cfg, "--data", "data.files", v.yaml()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"my.jsonl", "my data/*.csv", `odd"name.json`}; !reflect.DeepEqual(cfg.Data.Files, want) {
		t.Fatalf("data.files = %q, want %q", cfg.Data.Files, want)
	}
	l := &shortcutValue{kind: "list"}
	_ = l.Set("geography,chemistry")
	if err := config.ApplyFlag(cfg, "--subjects", "data.subjects", l.yaml()); err != nil || !reflect.DeepEqual(cfg.Data.Subjects, []string{"geography", "chemistry"}) {
		t.Fatalf("--subjects geography,chemistry: %v, %q", err, cfg.Data.Subjects)
	}
}

// TestNoQuestionsNoSamples: --eval-questions 0 was rejected because the
// default samples (2) exceeded it. The run here stops at the rank bound,
// past validation, before loading anything.
func TestNoQuestionsNoSamples(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, err := run(t, "train", "--eval-questions", "0", "--set", "training.lora.r=100000000", "--output", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "training.lora.r 100000000 exceeds") {
		t.Fatalf("got %v, want validation to pass and the rank bound to refuse", err)
	}
}

// TestResourceBombFlags: the three bombs of issue 12 through the CLI are
// refused in well under a second.
func TestResourceBombFlags(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "training.lora.r=100000000"}, "training.lora.r 100000000 exceeds the dimensions"},
		{[]string{"--seq-len", "100000000"}, "data.max_length 100000000 exceeds the model's max_position_embeddings"},
		{[]string{"--set", "training.batch_size=1000000000"}, "training.batch_size 1000000000 is more rows"},
	} {
		start := time.Now()
		_, err := run(t, append([]string{"train", "--output", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%v: refused after %v", tc.args, took)
		}
	}
}

// TestEnvCores: ftune env printed cpuid's core count (254 on a 2-vCPU
// VM); it prints the CPUs ftune can use.
func TestEnvCores(t *testing.T) {
	out, err := run(t, "env")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("cores:    %d usable (GOMAXPROCS %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if !strings.Contains(out, want) {
		t.Fatalf("env lacks %q:\n%s", want, out)
	}
	if n := cpuid.CPU.PhysicalCores; n != runtime.NumCPU() && strings.Contains(out, fmt.Sprintf("(%d cores", n)) {
		t.Fatalf("env prints cpuid's %d cores:\n%s", n, out)
	}
}
