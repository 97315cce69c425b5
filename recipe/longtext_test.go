package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
// trained on whole: cut into pieces of the sequence length, held-out
// documents too, where data.long_text truncate keeps only each one's
// first row. Before, the folder was refused (no data file) and a .md
// file given alone was read one example per line.
func TestTrainOnDocuments(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.DataFiles, o.SeqLen, o.ValSplit = "", []string{writeDocs(t, 10)}, 64, 0.2
	ds, log, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := ds.stats["data"]
	if st.Examples != 8 || st.Truncated != 0 || st.Longest < 10*o.SeqLen {
		t.Fatalf("training split %+v: want 8 whole documents (2 of 10 held out), each over %d tokens", st, 10*o.SeqLen)
	}
	if !strings.Contains(log, "subject data: 8 text examples longer than data.max_length (64 tokens) are split into ") ||
		!strings.Contains(log, "subject data (validation): 2 text examples longer than data.max_length (64 tokens) are split into ") ||
		!strings.Contains(log, " pieces, each validated on (data.long_text: split;") {
		t.Fatalf("the run does not say it splits the documents:\n%s", log)
	}
	train, val := rowTokens(ds)
	// Each piece but a document's last is a full row; a last piece of
	// one token is left out.
	if train < st.Tokens-8 || train > st.Tokens || val < 20*o.SeqLen {
		t.Fatalf("rows hold %d training tokens of the documents' %d, and %d held out: want every piece", train, st.Tokens, val)
	}
	for _, r := range ds.train {
		if len(r.InputIDs) > o.SeqLen {
			t.Fatalf("a row of %d tokens, longer than the sequence length %d", len(r.InputIDs), o.SeqLen)
		}
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
	o.TextUnit = "paragraph"
	if _, _, err := DataInputs(o); err == nil || !strings.Contains(err.Error(), "data.text_unit: paragraph cuts plain-text files (.txt, .md) into examples, and none of ") {
		t.Fatalf("text_unit with no text file: %v", err)
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
