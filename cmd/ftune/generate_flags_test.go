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
	} {
		_, err := run(t, append([]string{"generate", "--model", "/nonexistent/model"}, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error saying %q", args, err, want)
		}
	}
}
