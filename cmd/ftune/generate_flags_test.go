package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestGenerateThinkingFlags: contradictory or meaningless thinking flags
// are usage errors before any model is loaded.
func TestGenerateThinkingFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--thinking --no-thinking --prompt x": "contradict",
		"--raw --no-thinking --prompt x":      "--raw uses no template",
		"--max-tokens -5 --prompt x":          "--max-tokens -5: want at least 1",
		"--max-tokens 0 --prompt x":           "--max-tokens 0: want at least 1",
	} {
		_, err := run(t, append([]string{"generate", "--model", "/nonexistent/model"}, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error saying %q", args, err, want)
		}
	}
}

// TestGenerateSamplingFlags: sampling flags that would be ignored (any of
// --top-k, --top-p, --seed with the greedy --temperature 0: two seeds gave
// the same text, exit 0) or that are out of range (--temperature -1 was
// refused after loading the model, in nn's field names, exit 1), an empty
// or non-UTF-8 --prompt, and --raw without --prompt (the chat applied the
// template anyway) are usage errors (exit 2) naming the flag, before the
// model loads: the model here does not exist.
func TestGenerateSamplingFlags(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--prompt x --top-k 5 --seed 1", "--top-k, --seed shape sampling, and --temperature 0"},
		{"--prompt x --seed 2", "--seed shapes sampling, and --temperature 0"},
		{"--prompt x --top-p 0.9", "--top-p shapes sampling, and --temperature 0"},
		{"--prompt x --top-k 0", "--top-k shapes sampling"}, // given, even as its default
		{"--top-k 5", "--top-k shapes sampling"},            // the chat too
		{"--prompt x --temperature -1", "--temperature -1: want a finite value ≥ 0"},
		{"--prompt x --temperature NaN", "--temperature NaN: want a finite value ≥ 0"},
		{"--prompt x --temperature +Inf", "--temperature +Inf: want a finite value ≥ 0"},
		{"--temperature -1", "--temperature -1"}, // in a chat, before the first message
		{"--prompt x --temperature 1 --top-k -1", "--top-k -1: want 0 (all tokens) or more"},
		{"--prompt x --temperature 1 --top-p 0", "--top-p 0: want 0 < p ≤ 1"},
		{"--prompt x --temperature 1 --top-p 1.5", "--top-p 1.5: want 0 < p ≤ 1"},
		{"--prompt x --temperature 1 --top-p NaN", "--top-p NaN: want 0 < p ≤ 1"},
		{"--prompt x --min-p 0.1", "--min-p shapes sampling, and --temperature 0"},
		{"--prompt x --temperature 0 --min-p 0.1", "--min-p shapes sampling, and --temperature 0 is greedy"},
		{"--prompt x --temperature 1 --min-p 1.5", "--min-p 1.5: want 0 ≤ p ≤ 1"},
		{"--prompt x --temperature 1 --min-p -0.1", "--min-p -0.1: want 0 ≤ p ≤ 1"},
		{"--prompt x --temperature 1 --min-p NaN", "--min-p NaN: want 0 ≤ p ≤ 1"},
		{"--prompt x --repetition-penalty 0", "--repetition-penalty 0: want a finite value > 0 (1: off"},
		{"--prompt x --repetition-penalty -1.2", "--repetition-penalty -1.2: want a finite value > 0"},
		{"--prompt x --repetition-penalty NaN", "--repetition-penalty NaN: want a finite value > 0"},
		{"--prompt x --repetition-penalty +Inf", "--repetition-penalty +Inf: want a finite value > 0"},
		{"--raw", "--raw continues a --prompt"},
		{"--raw --max-tokens 4", "--raw continues a --prompt"},
	} {
		_, err := run(t, append([]string{"generate", "--model", "/nonexistent/model"}, strings.Fields(c.args)...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--prompt", ""}, "--prompt is empty"},
		{[]string{"-p", ""}, "--prompt is empty"},
		{[]string{"--prompt", "ab\xffc"}, "--prompt: byte 3 is not valid UTF-8"},
		{[]string{"--system", "\xc3", "--prompt", "x"}, "--system: byte 1 is not valid UTF-8"},
		{[]string{"--prompt", "x", "--stop", "Q:", "--stop", ""}, "--stop is empty"},
		{[]string{"--stop", ""}, "--stop is empty"}, // the chat too
		{[]string{"--prompt", "x", "--stop", "a\xff"}, `--stop "a\xff": byte 2 is not valid UTF-8`},
	} {
		_, err := run(t, append([]string{"generate", "--model", "/nonexistent/model"}, c.args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
	// Sampling as asked passes the checks: the error is the missing model.
	for _, args := range []string{"--prompt x --temperature 0.8 --top-k 5 --top-p 0.9 --seed 7", "--prompt x --temperature 1 --top-p 1", "--temperature 0.8",
		"--prompt x --temperature 0.8 --min-p 0.05 --repetition-penalty 1.1 --stop Q: --stop ,", "--prompt x --repetition-penalty 0.9 --stop A"} {
		_, err := run(t, append([]string{"generate", "--model", "/nonexistent/model"}, strings.Fields(args)...)...)
		var ue usageError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "/nonexistent/model") {
			t.Errorf("%s: got %v, want the missing model's error", args, err)
		}
	}
}

// TestExportShardFlag: a shard limit below 1 MB is a usage error, not a
// silent single file.
func TestExportShardFlag(t *testing.T) {
	for _, v := range []string{"0", "-1"} {
		_, err := run(t, "export", "--model", "/nonexistent/model", "--adapter", "/nonexistent/adapter", "--out", t.TempDir(), "--max-shard-mb", v)
		if err == nil || !strings.Contains(err.Error(), "--max-shard-mb "+v+": want at least 1") {
			t.Errorf("--max-shard-mb %s: got %v", v, err)
		}
	}
}

// TestGenerateHelpExamples: the help's example ran an adapter at
// runs/latest/adapter, a folder no command makes. An --adapter in the
// examples is a placeholder (runs/<run>/adapter, as train prints it) or a
// folder that exists.
func TestGenerateHelpExamples(t *testing.T) {
	fields := strings.Fields(newGenerateCmd().Example)
	for i, f := range fields {
		if f != "--adapter" || i+1 == len(fields) {
			continue
		}
		if p := fields[i+1]; !strings.Contains(p, "<run>") {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("the example's --adapter %s: %v", p, err)
			}
		}
	}
}

// TestGenerateToolsFlag: --tools is shown to the model by the chat
// template: with --raw, a missing file or a file that is not a JSON list
// it is a usage error, and on a model whose template does not show tools
// (tiny-base's ChatML) too, rather than a reply made without them.
func TestGenerateToolsFlag(t *testing.T) {
	dir := t.TempDir()
	list := dir + "/tools.json"
	if err := os.WriteFile(list, []byte(`[{"type": "function", "function": {"name": "element", "parameters": {"type": "object", "properties": {}}}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	object := dir + "/object.json"
	if err := os.WriteFile(object, []byte(`{"name": "element"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ args, want string }{
		{"--raw --prompt x --tools " + list, "--raw uses no template"},
		{"--prompt x --tools " + dir + "/missing.json", "--tools: "},
		{"--prompt x --tools " + object, "want a JSON list of tool schemas"},
		{"--prompt x --tools " + list, "does not show tools to the model"},
	} {
		_, err := run(t, append([]string{"generate", "--model", "tiny-base"}, strings.Fields(c.args)...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
}
