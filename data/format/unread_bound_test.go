package format

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnreadTextBounded: the unread-text check of a record with a large
// text and very many short fields is linear, and its refusal names a few
// fields, not all: a 2.4 MB record took 11 s (4 MB beside 200,000
// fields, minutes), and the message listed every field.
func TestUnreadTextBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"question": "q", "answer": "` + strings.Repeat("word ", 400_000) + `"`)
	for i := range 50_000 {
		fmt.Fprintf(&b, `, "note%d": "text %d"`, i, i)
	}
	b.WriteString("}\n")
	path := filepath.Join(t.TempDir(), "wide.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := ReadAll(path, Options{})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("read in %v", took)
	}
	if err == nil || !strings.Contains(err.Error(), `"note0", "note1", "note10"`) || !strings.Contains(err.Error(), "and 49992 more hold text") || len(err.Error()) > 2000 {
		t.Fatalf("got %.3000v", err)
	}
}
