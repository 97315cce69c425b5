package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// exitOf runs a command line as main does (execute: the error printed on
// one line, the exit status) and returns the status and what was printed.
func exitOf(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runAsMain(t, true, args...)
}

// runAsMain runs a command line as main does: the command's stdout, its
// stderr (into stdout when merged: what a person reads on a terminal),
// and the error execute prints on stderr, with the exit status.
func runAsMain(t *testing.T, merged bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	if merged {
		root.SetErr(&out)
	}
	root.SetArgs(args)
	code = execute(context.Background(), root, &errOut)
	return code, out.String(), errOut.String()
}

// TestExitUsageFromTheParser: what cobra and pflag catch on the command
// line (a flag a command lacks, a value that does not parse, too few or
// too many arguments, a command that does not exist, at the root or
// below it) exits 2, as ftune's own usage checks do; they exited 1, and
// an unknown subcommand of a group (ftune runs bogus) printed the group's
// help and exited 0. The message names what was wrong and where to look.
func TestExitUsageFromTheParser(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--bogus"}, "unknown flag: --bogus (see ftune generate --help)"},
		{[]string{"generate", "--max-tokens", "abc"}, `invalid argument "abc" for "--max-tokens" flag`},
		// The config key's name is the same flag.
		{[]string{"generate", "--max-new-tokens", "abc"}, `invalid argument "abc" for "--max-tokens" flag`},
		{[]string{"runs", "show"}, "accepts 1 arg(s), received 0 (usage: ftune runs show RUN [flags])"},
		{[]string{"runs", "report", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"runs", "compare"}, "requires at least 1 arg(s)"},
		{[]string{"init", "a.yaml", "b.yaml"}, "accepts at most 1 arg(s), received 2"},
		{[]string{"version", "extra"}, `"extra"`},
		{[]string{"bogus"}, `unknown command "bogus" for "ftune"`},
		{[]string{"tarin"}, "did you mean train?"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"runs", "bogus"}, `unknown command "bogus" for "ftune runs"`},
		{[]string{"help", "bogus"}, `unknown help topic "bogus"`},
		{[]string{"help", "runs", "bogus"}, `unknown help topic "runs bogus"`},
		{[]string{"data", "bogus"}, `unknown command "bogus" for "ftune data"`},
		{[]string{"completion", "bogus"}, `unknown command "bogus" for "ftune completion"`},
		{[]string{"runs", "list", "--bogus"}, "unknown flag: --bogus (see ftune runs list --help)"},
		{[]string{"train", "--nproc-per-node", "two"}, `invalid argument "two"`},
	} {
		code, _, stderr := exitOf(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, "ftune: ") || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("ftune %s: exit %d, stderr %q; want exit 2 and one line saying %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestExitOtherwise: help, a group alone and a command that works exit 0
// with what they printed before; an error that is not the command line's
// exits 1.
func TestExitOtherwise(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 0, "Available Commands:"},
		{[]string{"--help"}, 0, "Available Commands:"},
		{[]string{"runs"}, 0, "Usage:\n  ftune runs [command]\n\nExamples:"},
		{[]string{"runs", "--help"}, 0, "Usage:\n  ftune runs [command]\n\nExamples:"},
		{[]string{"help", "runs"}, 0, "Usage:\n  ftune runs [command]\n\nExamples:"},
		{[]string{"help", "runs", "show"}, 0, "Usage:\n  ftune runs show RUN [flags]"},
		{[]string{"help"}, 0, "Available Commands:"},
		{[]string{"runs", "show", "--help"}, 0, "Usage:\n  ftune runs show RUN [flags]"},
		{[]string{"version"}, 0, "ftune"},
		{[]string{"runs", "show", "/nonexistent/run"}, 1, ""},
	} {
		code, stdout, stderr := exitOf(t, c.args...)
		if code != c.code || !strings.Contains(stdout, c.want) {
			t.Errorf("ftune %s: exit %d (stderr %q), want %d; stdout lacks %q:\n%s", strings.Join(c.args, " "), code, stderr, c.code, c.want, stdout)
		}
	}
}

// TestExitConfigFromTheCommandLine: a value that a flag or --set gives a
// config key and that the config refuses is bad usage (exit 2), in eval
// (where the flags were set in code: "(set in code)", exit 1) as in train;
// the same value from a run file is not (exit 1).
func TestExitConfigFromTheCommandLine(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--questions", "-1"}, "--questions -1: training.eval.generation.questions: must be >= 0, got -1"},
		{[]string{"eval", "--seq-len", "5"}, "--seq-len 5: data.max_length: must be >= 16 tokens, got 5"},
		{[]string{"eval", "--questions", "abc"}, `--questions abc: training.eval.generation.questions: want a whole number, got "abc"`},
		{[]string{"train", "--seq-len", "5"}, "--seq-len 5: data.max_length: must be >= 16 tokens, got 5"},
		{[]string{"train", "--set", "training.lora.r=0"}, "--set training.lora.r=0: training.lora.r: must be > 0"},
	} {
		code, _, stderr := exitOf(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "set in code") {
			t.Errorf("ftune %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	file := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(file, []byte("data:\n  max_length: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := exitOf(t, "train", "-c", file); code != 1 || !strings.Contains(stderr, "run.yaml:2: data.max_length") {
		t.Errorf("a bad value in a run file: exit %d, stderr %q; want exit 1 naming the file's line", code, stderr)
	}
	// A run file and a flag both wrong: not the command line's alone.
	if code, _, stderr := exitOf(t, "train", "-c", file, "--set", "training.lora.r=0"); code != 1 || !strings.Contains(stderr, "run.yaml:2") || !strings.Contains(stderr, "--set training.lora.r=0") {
		t.Errorf("a bad run file and a bad --set: exit %d, stderr %q; want exit 1 naming both", code, stderr)
	}
}

// TestConfigProblemsALineEach: a run file's problems (another trainer's
// config gives dozens) are printed a line each, each beginning "ftune: "
// and naming its file:line; they were joined into one line hundreds of
// characters long.
func TestConfigProblemsALineEach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(path, []byte("model:\n  pth: x\ntraining:\n  lr: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := exitOf(t, "train", "-c", path)
	want := "ftune: " + path + ":2: unknown key `pth` in model; did you mean `path`?\n" +
		"ftune: " + path + ":4: unknown key `lr` in training; did you mean `training.optimizer.lr`?\n"
	if code == 0 || stderr != want {
		t.Fatalf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
}

// TestBadFlagValuesAreUsage: a value an enum-like flag of export, data or
// runs does not take exits 2 with a line naming the flag, as eval --split
// and train --precision do; they exited 1. Export's are checked before
// the model loads: the adapter named does not exist, and it is the flag
// that is said.
func TestBadFlagValuesAreUsage(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	adapter := filepath.Join(dir, "no-adapter")
	out := filepath.Join(dir, "out.gguf")
	tiny := filepath.Join(dir, "tiny.jsonl")
	if err := os.WriteFile(tiny, []byte(`{"prompt":"Q","completion":"A"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A relative --out that went unexpanded would be made here.
	t.Chdir(dir)
	t.Setenv("FTUNE_UNSET_Q", "") // restored after the test
	os.Unsetenv("FTUNE_UNSET_Q")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--format", "bogus", "--out", out}, `--format "bogus"`},
		{[]string{"export", "--adapter", adapter, "--format", "gguf", "--quant", "q9", "--out", out}, `--quant q9: `},
		{[]string{"export", "--adapter", adapter, "--format", "gguf-lora", "--quant", "q4_k_m", "--out", out}, `--quant q4_k_m: `},
		{[]string{"export", "--adapter", adapter, "--format", "gguf", "--output-tensor-type", "q9", "--out", out}, `--output-tensor-type q9: `},
		{[]string{"export", "--adapter", adapter, "--format", "gguf", "--token-embedding-type", "bogus", "--out", out}, `--token-embedding-type bogus: `},
		{[]string{"data", "validate", "--color", "bogus"}, `--color "bogus": auto, always or never`},
		{[]string{"data", "validate", "--show", "-1"}, `--show -1: `},
		{[]string{"data", "prepare", "--data", tiny, "--out", "$FTUNE_UNSET_Q/x"}, `--out $FTUNE_UNSET_Q/x: environment variable $FTUNE_UNSET_Q is not set`},
		{[]string{"data", "prepare", "--data", tiny, "--out", "~someone/x"}, `--out ~someone/x: ~someone (another user's home directory) is not expanded`},
		{[]string{"data", "prepare", "--data", tiny, "--out", ""}, `--out is empty: `},
		{[]string{"runs", "compare", "a", "b", "--plot", "loss.jpg"}, `--plot `},
	} {
		code, _, stderr := exitOf(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("ftune %s: exit %d, stderr %q; want exit 2 and one line saying %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	for _, name := range []string{"$FTUNE_UNSET_Q", "~someone", "tiny"} {
		if _, err := os.Stat(name); err == nil {
			t.Errorf("data prepare made a folder named %s", name)
		}
	}
}

// TestEveryCommandHasExamples: README says every command's --help has
// examples; ftune's own commands (not cobra's help and completion) each
// have some.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s --help has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
}
