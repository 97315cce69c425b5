package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataValidateSaysHowAFileIsRead: what a run prints beside a file read
// otherwise than plainly (JSON Lines named .json, as datasets' to_json
// writes them; records wrapped in an object) validate prints too.
func TestDataValidateSaysHowAFileIsRead(t *testing.T) {
	dir := t.TempDir()
	rec := `{"messages": [{"role": "user", "content": "Capital of Peru?"}, {"role": "assistant", "content": "Lima"}]}`
	lines := filepath.Join(dir, "lines.json")
	wrapped := filepath.Join(dir, "wrapped.json")
	if err := os.WriteFile(lines, []byte(rec+"\n"+rec+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrapped, []byte(`{"version": 1, "data": [`+rec+`, `+rec+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		lines:   "note: " + lines + ": read as JSON Lines",
		wrapped: "note: " + wrapped + `: the records are the list under the top-level object's key "data"; "version" beside it is not read`,
	} {
		got, err := run(t, "data", "validate", "--data", file)
		if err != nil || !strings.Contains(got, want) {
			t.Errorf("validate %s: %v\n%s\nwant it to say %q", file, err, got, want)
		}
	}
}
