package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
)

// writeDocs writes a folder of Markdown documents, each many rows long,
// beside nothing else.
func writeDocs(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "# Widget %d manual\n\n", i)
		for j := range 40 {
			fmt.Fprintf(&b, "## Step %d\n\nTurn dial %d of widget %d clockwise until the lamp glows; then press the reset key.\n\n", j, j, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("widget-%d.md", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func rowTokens(ds *dataset) (train, val int) {
	for _, r := range ds.train {
		train += len(r.InputIDs)
	}
	for _, r := range ds.val {
		val += len(r.InputIDs)
	}
	return train, val
}

// TestTrainOnDocuments: a folder of Markdown documents (a product's docs)
// is read one example per file, and each document, many rows long, is
// trained on whole: cut into pieces of the sequence length, of which
// data.val_split is held out for validation (whole documents would make
// the held-out share whatever their lengths make it), where
// data.long_text truncate keeps only each one's first row and holds out
// whole examples. Before, the folder was refused (no data file) and a .md
// file given alone was read one example per line.
func TestTrainOnDocuments(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.DataFiles, o.SeqLen, o.ValSplit = "", []string{writeDocs(t, 10)}, 64, 0.2
	ds, log, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := ds.stats["data"]
	if st.Examples != 10 || st.Truncated != 0 || st.Longest < 10*o.SeqLen {
		t.Fatalf("training split %+v: want 10 whole documents, each over %d tokens", st, 10*o.SeqLen)
	}
	pieces := 0
	for _, line := range strings.Split(log, "\n") {
		var n, held, trained int
		if _, err := fmt.Sscanf(line, "subject data: 10 text examples longer than data.max_length (64 tokens) are split into %d pieces (data.long_text: split; truncate keeps only their start): %d of them held out for validation (data.val_split 0.2), %d trained on", &n, &held, &trained); err == nil {
			if held != (n+2)/5 || held+trained != n {
				t.Errorf("%d pieces: %d held out, %d trained on; want a fifth held out", n, held, trained)
			}
			pieces = n
		}
	}
	if pieces == 0 || !strings.Contains(log, "0 of 10 training examples held out for validation (data.val_split 0.2, data.seed 42); the 10 examples longer than a row are held out by their pieces instead, below") {
		t.Fatalf("the run does not say it splits the documents and holds out their pieces:\n%s", log)
	}
	train, _ := rowTokens(ds)
	if train < st.Tokens-10 || train > st.Tokens || len(ds.val) != (pieces+2)/5 {
		t.Fatalf("rows hold %d training tokens (the stats say %d) and %d validation rows: want every piece but the held-out fifth", train, st.Tokens, len(ds.val))
	}
	for _, r := range ds.train {
		if len(r.InputIDs) > o.SeqLen {
			t.Fatalf("a row of %d tokens, longer than the sequence length %d", len(r.InputIDs), o.SeqLen)
		}
	}
	again, _, err := loadLogged(t, o, 0)
	if err != nil || !slices.EqualFunc(again.val, ds.val, func(a, b prep.Row) bool { return slices.Equal(a.InputIDs, b.InputIDs) }) {
		t.Fatalf("a second load holds out other pieces (%v)", err)
	}

	o.LongText = "truncate"
	ds, log, err = loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := ds.stats["data"]; st.Truncated != 8 || strings.Contains(log, "are split into") {
		t.Fatalf("long_text truncate: %+v\n%s", st, log)
	}
	if train, _ := rowTokens(ds); train != 8*o.SeqLen {
		t.Fatalf("long_text truncate: %d training tokens, want the first %d of each of 8 documents", train, o.SeqLen)
	}
}

// TestMarkdownBesideData: a folder of data files holding a README.md (a
// dataset downloaded from the Hugging Face Hub holds its card so) reads
// the data files only; data.text_unit is refused where no file is plain
// text, and read where one is.
func TestMarkdownBesideData(t *testing.T) {
	dir := writeDocs(t, 1)
	data := `{"messages": [{"role": "user", "content": "Which way does the dial turn?"}, {"role": "assistant", "content": "Clockwise."}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "qa.jsonl"), []byte(strings.Repeat(data, 12)), 0o644); err != nil {
		t.Fatal(err)
	}
	o := dataOptions()
	o.DataRoot, o.DataFiles = "", []string{dir}
	ins, _, err := DataInputs(o)
	if err != nil || len(ins) != 1 || len(ins[0].Files) != 1 || filepath.Base(ins[0].Files[0]) != "qa.jsonl" {
		t.Fatalf("inputs %+v, %v: want qa.jsonl alone", ins, err)
	}
	if note := ins[0].PassedNote(); !strings.Contains(note, "data: 1 Markdown file(s) not read, beside the data files of their folder: "+filepath.Join(dir, "widget-0.md")) {
		t.Fatalf("the Markdown file left out is not named: %q", note)
	}
	o.TextUnit = "paragraph"
	if _, _, err := DataInputs(o); err == nil || !strings.Contains(err.Error(), "data.text_unit: paragraph cuts plain-text files (.txt, .md) into examples, and none of the data's files is one ("+filepath.Join(dir, "qa.jsonl")+")") {
		t.Fatalf("text_unit with no text file: %v", err)
	}
	bundled := dataOptions() // the bundled subjects' files are JSONL
	bundled.TextUnit = "line"
	if _, _, err := DataInputs(bundled); err == nil || !strings.Contains(err.Error(), "data.text_unit: line cuts plain-text files") {
		t.Fatalf("text_unit on the bundled subjects: %v", err)
	}
	o.DataFiles = []string{filepath.Join(dir, "widget-0.md")}
	ds, _, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := ds.stats["widget-0"].Examples; n < 70 { // 81 paragraphs, a tenth held out
		t.Fatalf("text_unit paragraph: %d examples", n)
	}
}

// TestDocumentTree: a folder of Markdown documents in subfolders (a docs
// tree, as mkdocs and Docusaurus lay one out) is read whole, hidden
// folders left out; a ** glob reaches into subfolders (filepath.Glob read
// it as *, dropping the top level's documents).
func TestDocumentTree(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"index.md", "guide/install.md", "guide/deep/tuning.md", ".git/notes.md", "assets/logo.png"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("# "+f+"\n\nText of "+f+".\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link to a document elsewhere is read; one to a document of the
	// tree is refused, as a file given twice is.
	outside := filepath.Join(t.TempDir(), "faq.md")
	if err := os.WriteFile(outside, []byte("# FAQ\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "guide", "faq.md")); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "guide/deep/tuning.md"), filepath.Join(dir, "guide/faq.md"), filepath.Join(dir, "guide/install.md"), filepath.Join(dir, "index.md")}
	o := dataOptions()
	o.DataRoot = ""
	for _, entry := range []string{dir, filepath.Join(dir, "**", "*.md")} {
		o.DataFiles = []string{entry}
		ins, _, err := DataInputs(o)
		if err != nil || len(ins) != 1 || !slices.Equal(slices.Sorted(slices.Values(ins[0].Files)), want) {
			t.Errorf("%s: %v, %v; want %v", entry, ins, err, want)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "index.md"), filepath.Join(dir, "guide", "start.md")); err != nil {
		t.Fatal(err)
	}
	o.DataFiles = []string{dir}
	if _, _, err := DataInputs(o); err == nil || !strings.Contains(err.Error(), "index.md is given twice") {
		t.Errorf("a link to a document of the tree: %v, want refused as given twice", err)
	}
}

// TestDocumentsDedupHeldOutByPiece: with data.augment.dedup, whose
// examples are held out before tokenising, documents are still held out
// by piece (a duplicate document dropped first): the share is drawn after
// tokenising, as without augmentation.
func TestDocumentsDedupHeldOutByPiece(t *testing.T) {
	dir := writeDocs(t, 4)
	b, err := os.ReadFile(filepath.Join(dir, "widget-0.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "widget-0-copy.md"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := dataOptions()
	o.DataRoot, o.DataFiles, o.SeqLen, o.ValSplit, o.Dedup = "", []string{dir}, 64, 0.25, 0.999
	ds, log, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "subject data: 4 text examples longer than data.max_length (64 tokens) are split into ") ||
		!strings.Contains(log, "of them held out for validation (data.val_split 0.25)") || len(ds.val) < 4 {
		t.Fatalf("dedup: the 4 documents left are not held out by piece (%d validation rows):\n%s", len(ds.val), log)
	}
}
