package main

import (
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
