package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// splitCorpus writes a small corpus whose long texts a run cuts into
// pieces (data.long_text: split): a folder of data files, one subject
// (two text files read by paragraph, a JSON Lines file of texts with a
// duplicate, conversations, one of them truncated), and a data root of a
// subject folder with a training and a validation split beside a text
// file.
func splitCorpus(t *testing.T) (files, root string) {
	t.Helper()
	dir := t.TempDir()
	files, root = filepath.Join(dir, "corpus"), filepath.Join(dir, "root")
	// paragraph is the i-th paragraph, of i%7*9+3 sentences: most of them
	// longer than the 64-token rows.
	paragraph := func(i int) string {
		var b strings.Builder
		for s := range i%7*9 + 3 {
			fmt.Fprintf(&b, "Sentence %d of paragraph %d turns the dial to %d. ", s, i, (i*s)%11)
		}
		return strings.TrimSpace(b.String())
	}
	write := func(path string, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var a, b, jl, train, val strings.Builder
	for i := range 40 { // more than one worker's share (prep's minPerWorker)
		a.WriteString(paragraph(i) + "\n\n")
		b.WriteString(paragraph(i+100) + "\n\n")
		fmt.Fprintf(&jl, "{\"text\": %q}\n", paragraph(i+200))
		fmt.Fprintf(&train, "{\"text\": %q}\n", paragraph(i+300))
	}
	fmt.Fprintf(&jl, "{\"text\": %q}\n", paragraph(200)) // a duplicate
	for i := range 3 {
		fmt.Fprintf(&val, "{\"text\": %q}\n", paragraph(i+400))
	}
	write(filepath.Join(files, "a.txt"), a.String())
	write(filepath.Join(files, "b.txt"), b.String())
	write(filepath.Join(files, "chats.jsonl"), fmt.Sprintf("{\"messages\": [{\"role\": \"user\", \"content\": %q}, {\"role\": \"assistant\", \"content\": %q}]}\n", paragraph(1), paragraph(2))+
		fmt.Sprintf("{\"messages\": [{\"role\": \"user\", \"content\": %q}, {\"role\": \"assistant\", \"content\": %q}]}\n", "Which dial?", paragraph(0)))
	write(filepath.Join(files, "texts.jsonl"), jl.String())
	write(filepath.Join(root, "dials", "train.jsonl"), train.String())
	write(filepath.Join(root, "dials", "val.jsonl"), val.String())
	write(filepath.Join(root, "notes.txt"), b.String())
	return files, root
}

// TestDataValidateCountsSplitText: data validate's report of a corpus of
// several files whose long texts are split into pieces, taken from the
// code that kept every tokenised document to count them, before
// validate counted documents as they were tokenised and let them go: the
// report must not change by a figure.
func TestDataValidateCountsSplitText(t *testing.T) {
	files, root := splitCorpus(t)
	for _, c := range []struct {
		flag, data, want string
	}{
		{"--data", files, validateFilesReport},
		{"--data-root", root, validateRootReport},
	} {
		args := []string{"data", "validate", c.flag, c.data, "--seq-len", "64", "--set", "data.text_unit=paragraph"}
		got, err := run(t, args...)
		if err != nil {
			t.Fatalf("validate %s: %v\n%s", c.flag, err, got)
		}
		got = strings.ReplaceAll(got, filepath.Dir(files), "DIR")
		if got != c.want {
			t.Errorf("validate %s:\n%s\nwant:\n%s", c.flag, got, c.want)
		}
		// --show prints the first examples before the same report.
		shown, err := run(t, append(args, "--show", "2", "--color", "never")...)
		if err != nil {
			t.Fatalf("validate %s --show 2: %v\n%s", c.flag, err, shown)
		}
		if shown = strings.ReplaceAll(shown, filepath.Dir(files), "DIR"); !strings.HasSuffix(shown, c.want) {
			t.Errorf("validate %s --show 2 does not end with the report:\n%s", c.flag, shown)
		}
	}
}

const validateFilesReport = `subject          examples  skipped    tokens    learnt  trunc    cut   drop  dups  file
data                   40        0     22278     22278      0     34      0     0  DIR/corpus/a.txt
data                   40        0     24940     24940      0     35      0     0  DIR/corpus/b.txt
data                    2        0        64        48      1      0      1     0  DIR/corpus/chats.jsonl
data                   41        0     25191     25191      0     36      0     1  DIR/corpus/texts.jsonl
`

const validateRootReport = `subject          split examples  skipped    tokens    learnt  trunc    cut   drop  dups
dials            train       40        0     23695     23695      0     34      0     0
dials            val          3        0      1278      1278      0      3      0     0

subject          examples  skipped    tokens    learnt  trunc    cut   drop  dups  file
notes                  40        0     24940     24940      0     35      0     0  DIR/root/notes.txt
`
