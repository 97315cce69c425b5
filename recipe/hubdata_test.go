package recipe

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	_ "github.com/ftune/ftune/data/format/parquet" // the reader of .parquet files
)

// hubCard is a dataset card as the Hub writes one: YAML front matter
// naming the configs and splits, then prose.
const hubCard = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n---\n# Capitals\n\nQuestions about capitals.\n"

// writeTree writes files (path relative to dir: content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// chats are n chat records, each asking its own question (prefix and
// index), one a line.
func chats(prefix string, from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"messages": [{"role": "user", "content": "%s question %d?"}, {"role": "assistant", "content": "answer %d"}]}`+"\n", prefix, i, i)
	}
	return b.String()
}

// hubFolder is a Hub dataset as `huggingface-cli download --repo-type
// dataset` leaves it: its card, and the train split in two shards, the
// validation and test splits in one each, under data/.
func hubFolder(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "capitals")
	writeTree(t, dir, map[string]string{
		"README.md":                            hubCard,
		".gitattributes":                       "*.parquet filter=lfs\n",
		"data/train-00000-of-00002.jsonl":      chats("train", 0, 10),
		"data/train-00001-of-00002.jsonl":      chats("train", 10, 10),
		"data/validation-00000-of-00001.jsonl": chats("valid", 0, 5),
		"data/test-00000-of-00001.jsonl":       chats("test", 0, 4),
	})
	return dir
}

// TestHubDataSplits: a folder laid out as a Hub dataset is one subject
// named after it: the train shards are its training examples, the
// validation split its validation set (nothing held out), the test split
// is not trained on (its questions are the held-out ones) and the card is
// not read, each said.
func TestHubDataSplits(t *testing.T) {
	dir := hubFolder(t)
	ds, log, err := loadLogged(t, fileOpts(dir), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.subjects) != 1 || ds.subjects[0] != "capitals" {
		t.Errorf("subjects %v, want [capitals]", ds.subjects)
	}
	if len(ds.train) != 20 || len(ds.val) != 5 {
		t.Errorf("%d training and %d validation rows, want 20 (both train shards) and 5 (the validation split)", len(ds.train), len(ds.val))
	}
	test := filepath.Join(dir, "data", "test-00000-of-00001.jsonl")
	for _, want := range []string{
		"data: capitals: " + filepath.Join(dir, "README.md") + " not read: a dataset card",
		"data: capitals: the test split (" + test + ") is not trained on",
		"its validation split (" + filepath.Join(dir, "data", "validation-00000-of-00001.jsonl") + ")",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "no validation file") || strings.Contains(log, "README.md: markdown") {
		t.Errorf("a validation share held out, or the card read:\n%s", log)
	}

	// The test split's examples are the held-out questions, as a subject
	// folder's test file's are.
	o := fileOpts(dir)
	o.EvalQuestions = 3
	ds, log, err = loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.questions) != 3 || !strings.HasPrefix(ds.questions[0].Question, "test question") {
		t.Errorf("questions %+v, want 3 of the test split's", ds.questions)
	}
	if !strings.Contains(log, "its examples are the held-out questions (eval.generation.questions)") {
		t.Errorf("the test split's use is not said:\n%s", log)
	}

	// The data/ folder given itself reads the same splits.
	ins, _, err := DataInputs(fileOpts(filepath.Join(dir, "data")))
	if err != nil || len(ins) != 1 || len(ins[0].Files) != 2 || len(ins[0].Val) != 1 || len(ins[0].Test) != 1 {
		t.Fatalf("data/ given: %+v, %v", ins, err)
	}
}

// TestHubDataParquet: the Hub's own layout, one parquet shard per split
// (data/train-00000-of-00001.parquet, ...): the validation split is the
// validation file, as validation.parquet beside train.parquet is, and
// its examples that are training examples too are flagged.
func TestHubDataParquet(t *testing.T) {
	type msg struct {
		Role    string `parquet:"role"`
		Content string `parquet:"content"`
	}
	type row struct {
		Messages []msg `parquet:"messages,list"`
	}
	write := func(path, prefix string, n int) {
		var rows []row
		for i := range n {
			rows = append(rows, row{Messages: []msg{{"user", fmt.Sprintf("%s capital %d?", prefix, i)}, {"assistant", fmt.Sprintf("city %d", i)}}})
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[row](f)
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(w.Close(), f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "hfsplits")
	writeTree(t, dir, map[string]string{"README.md": hubCard})
	write(filepath.Join(dir, "data", "train-00000-of-00001.parquet"), "TRAIN", 12)
	write(filepath.Join(dir, "data", "validation-00000-of-00001.parquet"), "TRAIN", 2) // two training examples again
	write(filepath.Join(dir, "data", "test-00000-of-00001.parquet"), "TEST", 4)
	ds, log, err := loadLogged(t, fileOpts(dir), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.subjects) != 1 || ds.subjects[0] != "hfsplits" || len(ds.train) != 12 || len(ds.val) != 2 {
		t.Errorf("subjects %v, %d training and %d validation rows; want [hfsplits], 12 and 2\n%s", ds.subjects, len(ds.train), len(ds.val), log)
	}
	if !strings.Contains(log, "warning: subject hfsplits: 2 of the 2 validation examples are also training examples") {
		t.Errorf("the overlap is not flagged:\n%s", log)
	}
}

// TestHubDataLayouts: the Hub's other layouts are read as one, and what
// ftune cannot read is refused naming the folder and what it expected.
func TestHubDataLayouts(t *testing.T) {
	type want struct {
		train, val, test int    // files of each split
		note             string // a line PassedNote holds
		err              string // what the refusal says
		name             string // the subject, when not the folder's
	}
	cases := []struct {
		name  string
		files map[string]string
		want  want
	}{
		{"splits at the top", map[string]string{"README.md": hubCard, "train.jsonl": chats("t", 0, 4), "test.jsonl": chats("x", 0, 2)},
			want{note: "the test split (DIR/test.jsonl) is not trained on"}},
		{"sharded at the top", map[string]string{"README.md": hubCard, "train-00000-of-00003.jsonl": chats("a", 0, 2), "train-00001-of-00003.jsonl": chats("b", 0, 2), "train-00002-of-00003.jsonl": chats("c", 0, 2)},
			want{train: 3, note: "DIR/README.md not read: a dataset card"}},
		{"one config", map[string]string{"README.md": hubCard, "plain_text/train-00000-of-00001.jsonl": chats("a", 0, 4), "plain_text/dev-00000-of-00001.jsonl": chats("b", 0, 2)},
			want{train: 1, val: 1, note: "its one configuration, DIR/plain_text, is read"}},
		{"split folders", map[string]string{"README.md": hubCard, "data/train/0000.jsonl": chats("a", 0, 4), "data/train/0001.jsonl": chats("b", 0, 4), "data/valid/0000.jsonl": chats("c", 0, 2)},
			want{train: 2, val: 1}},
		{"another split", map[string]string{"README.md": hubCard, "plain_text/train-00000-of-00001.jsonl": chats("a", 0, 4), "plain_text/unsupervised-00000-of-00001.jsonl": chats("u", 0, 4)},
			want{train: 1, note: "DIR/plain_text/unsupervised-00000-of-00001.jsonl not read: not a train, validation or test split"}},
		{"metadata beside a configuration", map[string]string{"dataset_infos.json": "{}", "plain_text/train-00000-of-00001.jsonl": chats("a", 0, 4)},
			want{train: 1, note: "DIR/dataset_infos.json not read"}},
		{"data files beside a split's", map[string]string{"a.jsonl": chats("a", 0, 4), "b.jsonl": chats("b", 0, 4), "old/train-00000-of-00001.jsonl": chats("c", 0, 4)},
			want{train: 2, name: "data"}},
		{"a compressed split beside data files", map[string]string{"a.jsonl": chats("a", 0, 4), "test.jsonl.gz": "x"},
			want{train: 1, name: "a"}},
		{"hashed shard names", map[string]string{"data/train-00000-of-00001-5a3f1c2e9b.jsonl": chats("a", 0, 4)},
			want{train: 1}},
		{"several configs", map[string]string{"README.md": hubCard, "en/train-00000-of-00001.jsonl": chats("a", 0, 4), "fr/train-00000-of-00001.jsonl": chats("b", 0, 4)},
			want{err: "DIR holds the configurations en, fr of a Hugging Face dataset, each a folder of splits: give the one to train on (--data DIR/en)"}},
		{"no train split", map[string]string{"README.md": hubCard, "data/test-00000-of-00001.jsonl": chats("a", 0, 4)},
			want{err: "DIR/data holds the test split of a Hugging Face dataset but no train split (want train.jsonl, train-00000-of-00001.parquet, ... or a train/ folder)"}},
		{"compressed shards", map[string]string{"README.md": hubCard, "data/train-00000-of-00001.jsonl.gz": "x"},
			want{err: "DIR/data/train-00000-of-00001.jsonl.gz: compressed: decompress it"}},
		{"saved to disk", map[string]string{"dataset_dict.json": "{}", "train/data-00000-of-00001.arrow": "x", "train/state.json": "{}"},
			want{err: "DIR/train/data-00000-of-00001.arrow is not a data file ftune reads"}},
		{"a split written as a folder", map[string]string{"README.md": hubCard, "data/train.parquet/part-00000-c000.parquet": "x"},
			want{err: "DIR/data/train.parquet is a folder named as a data file (Spark and Dask write a table so): give its files (--data 'DIR/data/train.parquet/*.parquet')"}},
		{"a folder in a split's folder", map[string]string{"README.md": hubCard, "data/train/0000.jsonl": chats("a", 0, 4), "data/train/more/0001.jsonl": chats("b", 0, 4)},
			want{err: "DIR/data/train/more is a folder inside the train split's folder DIR/data/train: ftune reads the files of a split's folder, not its folders"}},
		{"unsharded in data/", map[string]string{"README.md": hubCard, "data/train.jsonl": chats("a", 0, 4), "data/validation.jsonl": chats("b", 0, 2), "data/test.jsonl": chats("c", 0, 2)},
			want{train: 1, val: 1, test: 1, note: "the test split (DIR/data/test.jsonl) is not trained on"}},
		{"unsharded in data/, no card", map[string]string{"data/train.jsonl": chats("a", 0, 4)},
			want{train: 1}},
		{"unsharded configurations beside a card", map[string]string{"README.md": hubCard, "en/train.jsonl": chats("a", 0, 4), "fr/train.jsonl": chats("b", 0, 4)},
			want{err: "DIR holds the configurations en, fr of a Hugging Face dataset, each a folder of splits: give the one to train on (--data DIR/en)"}},
		{"data files in a docs tree", map[string]string{"README.md": hubCard, "raw/capitals.parquet": "x"},
			want{err: "its Markdown files are not read as the data beside data files: DIR/raw/capitals.parquet"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			writeTree(t, dir, c.files)
			sub := func(s string) string { return strings.ReplaceAll(s, "DIR", dir) }
			ins, _, err := DataInputs(fileOpts(dir))
			if c.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), sub(c.want.err)) {
					t.Fatalf("got %+v, %v; want the refusal %q", ins, err, sub(c.want.err))
				}
				return
			}
			if err != nil || len(ins) != 1 {
				t.Fatalf("%+v, %v", ins, err)
			}
			in := ins[0]
			if name := cmp.Or(c.want.name, "ds"); in.Name != name {
				t.Errorf("subject %q, want %s", in.Name, name)
			}
			if in.Folder == nil && (len(in.Files) != c.want.train || len(in.Val) != c.want.val || len(in.Test) != c.want.test) {
				t.Errorf("%d training, %d validation, %d test files; want %d, %d, %d", len(in.Files), len(in.Val), len(in.Test), c.want.train, c.want.val, c.want.test)
			}
			if note := in.PassedNote(); !strings.Contains(note, sub(c.want.note)) {
				t.Errorf("the notes do not say %q:\n%s", sub(c.want.note), note)
			}
		})
	}
}

// TestHubDataWithOthers: a Hub dataset folder is one subject, given
// alone; data.subjects names it.
func TestHubDataWithOthers(t *testing.T) {
	dir := hubFolder(t)
	other := writeUserFile(t, t.TempDir(), "more.jsonl", "chat", 4)
	if _, _, err := DataInputs(fileOpts(dir, other)); err == nil || !strings.Contains(err.Error(), dir+" is a Hugging Face dataset folder (its splits are one subject): give it alone") {
		t.Errorf("with another file: %v", err)
	}
	o := fileOpts(dir)
	o.Subjects = []string{"train"}
	if _, _, err := DataInputs(o); err == nil || !strings.Contains(err.Error(), `no subject "train" in `+dir+" (have: capitals)") {
		t.Errorf("data.subjects [train]: %v", err)
	}
}

// TestHubDataRootRefused: a Hub dataset given as the data root is refused
// pointing at --data: its shards are not subjects.
func TestHubDataRootRefused(t *testing.T) {
	dir := hubFolder(t)
	unsharded := filepath.Join(t.TempDir(), "unsharded")
	writeTree(t, unsharded, map[string]string{"README.md": hubCard, "data/train.jsonl": chats("a", 0, 4), "data/test.jsonl": chats("b", 0, 2)})
	for _, root := range []string{dir, filepath.Join(dir, "data"), unsharded} {
		_, _, err := DataInputs(rootOpts(root))
		if err == nil || !strings.Contains(err.Error(), root+" is laid out as a Hugging Face dataset") || !strings.Contains(err.Error(), "give it as --data") {
			t.Errorf("data root %s: %v", root, err)
		}
	}
}

// TestHubDataDocsStay: a folder of Markdown documents (no data file) is
// still a corpus, its README with the rest.
func TestHubDataDocsStay(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"README.md": "# Widget\n\nIt turns.\n", "guide/install.md": "# Installing the widget\n", "guide/deep/testing.md": "# Testing\n"})
	ins, _, err := DataInputs(fileOpts(dir))
	if err != nil || len(ins) != 1 || len(ins[0].Files) != 3 || len(ins[0].Val)+len(ins[0].Test) != 0 || ins[0].PassedNote() != "" {
		t.Fatalf("%+v, %v: want the three documents", ins, err)
	}
}
