package recipe

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestDocsNamedAfterASplit: a docs tree whose documents include one named
// like a split (guide/train.md: how to train) is a folder of documents.
// A .md file counted as a subject folder's train file, so guide/ was a
// subject folder and the tree a folder of subject folders, its other
// documents dropped. A Markdown file is never split data.
func TestDocsNamedAfterASplit(t *testing.T) {
	for _, layout := range []map[string]string{
		{"README.md": "# Widget\n\nIt turns.\n", "guide/train.md": "# Training the widget\n\nFeed it.\n", "guide/install.md": "# Installing\n\nPlug it in.\n"},
		{"index.md": "# Widget\n", "test.md": "# Testing the widget\n", "validation.markdown": "# Validation\n"},
	} {
		dir := t.TempDir()
		writeTree(t, dir, layout)
		var want []string
		for name := range layout {
			want = append(want, filepath.Join(dir, name))
		}
		slices.Sort(want)
		ins, _, err := DataInputs(fileOpts(dir))
		if err != nil || len(ins) != 1 || ins[0].Folder != nil || len(ins[0].Val)+len(ins[0].Test) != 0 {
			t.Fatalf("%v: %+v, %v: want one subject of the %d documents", layout, ins, err, len(layout))
		}
		got := slices.Sorted(slices.Values(ins[0].Files))
		if !slices.Equal(got, want) {
			t.Errorf("documents %v, want %v", got, want)
		}
		// Its folder given alone is a folder of documents too.
		if _, ok := layout["guide/train.md"]; ok {
			ins, _, err := DataInputs(fileOpts(filepath.Join(dir, "guide")))
			if err != nil || len(ins) != 1 || ins[0].Folder != nil || len(ins[0].Files) != 2 {
				t.Errorf("guide/ given: %+v, %v: want its two documents", ins, err)
			}
		}
	}
}
