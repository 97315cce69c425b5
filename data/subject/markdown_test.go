package subject

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMarkdownIsNoSplit: a Markdown document named after a split
// (guide/train.md) made its folder a subject folder and its parent a
// folder of subject folders; a document is never a split's data.
func TestMarkdownIsNoSplit(t *testing.T) {
	root := t.TempDir()
	guide := filepath.Join(root, "guide")
	if err := os.MkdirAll(guide, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"train.md", "test.markdown", "install.md"} {
		if err := os.WriteFile(filepath.Join(guide, name), []byte("# "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if s, ok, err := OpenSubject(guide); ok || err != nil {
		t.Errorf("guide/ of documents: subject %+v, %v, %v; want none", s, ok, err)
	}
	if _, err := Open(root); !errors.Is(err, ErrNoSubjects) {
		t.Errorf("a docs tree: %v, want ErrNoSubjects", err)
	}
	// A train file beside them still makes a subject folder, its Markdown
	// not read as a split.
	if err := os.WriteFile(filepath.Join(guide, "val.jsonl"), []byte(`{"text": "x"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, ok, err := OpenSubject(guide)
	if err != nil || !ok || len(s.Files) != 1 || s.Files[Val] == "" {
		t.Errorf("with val.jsonl: %+v, %v, %v; want its one val file", s, ok, err)
	}
}
