package subject

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func qa(q, a string) string {
	return `{"messages":[{"role":"user","content":"` + q + `"},{"role":"assistant","content":"` + a + `"}]}` + "\n"
}

var testTree = map[string]string{
	"geo/subject.yaml":        "description: capitals\nweight: 2\nsystem: Answer briefly.\n",
	"geo/train.jsonl":         qa("Capital of France?", "Paris") + qa("Capital of Peru?", "Lima") + qa("capital of  france?", "Paris"),
	"geo/val.jsonl":           qa("Capital of Peru?", "Lima") + qa("Capital of Chad?", "N'Djamena"),
	"geo/test.csv":            "question,answer\nCapital of Chad?,N'Djamena\nCapital of Mali?,Bamako\n",
	"chem/train.json":         `[{"instruction":"Symbol of iron?","output":"Fe"},{"instruction":"Symbol of gold?","output":"Au"}]`,
	"chem/validation.jsonl":   `{"instruction":"Symbol of tin?","output":"Sn"}` + "\n",
	"hist/subject.yaml":       "name: history\nshape: input_output\ncolumns: {prompt: q, response: a}\n",
	"hist/dev.tsv":            "q\ta\nFirst president?\tGeorge Washington\n",
	"notes/readme.md":         "not a subject",
	".cache/train.jsonl":      qa("x", "y"),
	"geo/notes.txt":           "ignored: not a split name",
	"chem/train_extra.jsonl2": "ignored",
}

func TestOpenDiscovers(t *testing.T) {
	m, err := Open(writeTree(t, testTree))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, s := range m.Subjects {
		names = append(names, s.Name)
		if s.ID != i {
			t.Errorf("%s has id %d at index %d", s.Name, s.ID, i)
		}
	}
	if strings.Join(names, ",") != "chem,geo,history" {
		t.Fatalf("subjects %v", names)
	}
	geo, _ := m.Subject("geo")
	if geo.WeightOrDefault() != 2 || geo.Config.Description != "capitals" || len(geo.Files) != 3 {
		t.Errorf("geo %+v", geo)
	}
	chem, _ := m.Subject("chem")
	if chem.WeightOrDefault() != 1 || filepath.Base(chem.Files[Val]) != "validation.jsonl" || len(chem.Files) != 2 {
		t.Errorf("chem %+v", chem)
	}
	hist, _ := m.Subject("history")
	exs, _, err := hist.Load(Val, format.Options{})
	if err != nil || len(exs) != 1 || exs[0].Messages[1].Content != "George Washington" {
		t.Errorf("history val %+v %v", exs, err)
	}
	exs, _, err = geo.Load(Train, format.Options{})
	if err != nil || len(exs) != 3 || !exs[0].Messages[0].Equal(format.Message{Role: "system", Content: "Answer briefly."}) {
		t.Errorf("geo train %+v %v: want the system prompt first", exs, err)
	}
	if _, _, err := chem.Load(Test, format.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing split error %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty root", map[string]string{"a/readme": "x"}, "no subject folders"},
		{"unknown yaml key", map[string]string{"a/subject.yaml": "weigth: 2\n", "a/train.jsonl": qa("q", "a")}, "weigth"},
		{"negative weight", map[string]string{"a/subject.yaml": "weight: -1\n", "a/train.jsonl": qa("q", "a")}, "weight -1"},
		{"bad yaml", map[string]string{"a/subject.yaml": "weight: [\n", "a/train.jsonl": qa("q", "a")}, "subject.yaml"},
		{"two train files", map[string]string{"a/train.jsonl": qa("q", "a"), "a/train.csv": "q,a\n"}, "two train files"},
		{"unsupported split file", map[string]string{"a/train.xlsx": "x"}, ".xlsx"},
		{"config without data", map[string]string{"a/subject.yaml": "weight: 1\n"}, "no train, val or test file"},
		{"bad shape", map[string]string{"a/subject.yaml": "shape: tabular\n", "a/train.jsonl": qa("q", "a")}, "tabular"},
		{"columns without shape", map[string]string{"a/subject.yaml": "columns: {prompt: q}\n", "a/train.jsonl": qa("q", "a")}, "columns need a shape"},
		{"unknown column key", map[string]string{"a/subject.yaml": "shape: chat\ncolumns: {speaker: who}\n", "a/train.jsonl": qa("q", "a")}, `"speaker"`},
		{"same name twice", map[string]string{"a/subject.yaml": "name: x\n", "a/train.jsonl": qa("q", "a"), "b/subject.yaml": "name: x\n", "b/train.jsonl": qa("q", "a")}, `subject name "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(writeTree(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// bytePrep is a byte-level tokenizer with a one-line-per-turn template.
func bytePrep(opts prep.Options) PrepFor {
	return func(*Subject) (*prep.Preprocessor, error) {
		enc := prep.EncoderFunc(func(s string, _ bool) ([]int, error) {
			ids := make([]int, len(s))
			for i := range s {
				ids[i] = int(s[i])
			}
			return ids, nil
		})
		tmpl := prep.RenderFunc(func(ms []format.Message, gen bool) (string, error) {
			var b strings.Builder
			for _, m := range ms {
				b.WriteString(m.Role + ": " + m.Content + "\n")
			}
			if gen {
				b.WriteString("assistant: ")
			}
			return b.String(), nil
		})
		return &prep.Preprocessor{Enc: enc, Tmpl: tmpl, EOS: 0, Opts: opts}, nil
	}
}

func TestValidate(t *testing.T) {
	m, err := Open(writeTree(t, testTree))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Validate(format.Options{}, bytePrep(prep.Options{MaxLen: 80}))
	if err != nil {
		t.Fatal(err)
	}
	geo := rep.Subjects[1]
	if geo.Name != "geo" {
		t.Fatalf("subject order %v", geo.Name)
	}
	tr, va, te := geo.Splits[Train], geo.Splits[Val], geo.Splits[Test]
	if tr.Examples != 3 || va.Examples != 2 || te.Examples != 2 {
		t.Errorf("examples %d/%d/%d", tr.Examples, va.Examples, te.Examples)
	}
	// "capital of  france?" is "Capital of France?" up to case and spaces.
	if tr.Duplicates != 1 {
		t.Errorf("train duplicates %d, want 1", tr.Duplicates)
	}
	// Peru is in train and val; Chad in val and test (the CSV shape has no
	// system prompt column but subject.yaml adds it to both).
	if len(geo.Overlaps) != 2 || geo.Overlaps[0].A != Train || geo.Overlaps[0].B != Val || geo.Overlaps[1].A != Val || geo.Overlaps[1].B != Test {
		t.Errorf("overlaps %+v", geo.Overlaps)
	}
	// "system: Answer briefly.\nuser: Capital of France?\nassistant: Paris\n" + EOS
	// is 24 + 25 + 17 + 1 = 67 tokens, of which "Paris\n" + EOS = 7 learnt;
	// Peru's is 24 + 23 + 16 + 1, the second France's 24 + 26 + 17 + 1.
	// Answers start at tokens 60, 58 and 61.
	if tr.Tokens != 67+64+68 || tr.LabelTokens != 7+6+7 || tr.Truncated != 0 {
		t.Errorf("train tokens %d learnt %d truncated %d", tr.Tokens, tr.LabelTokens, tr.Truncated)
	}
	if rep.OK() {
		t.Error("a report with overlaps is OK")
	}
	s := rep.String()
	for _, want := range []string{"geo: 1 examples in both train/val", "geo: 1 examples in both val/test", "history", "chem "} {
		if !strings.Contains(s, want) {
			t.Errorf("report does not say %q:\n%s", want, s)
		}
	}
	// Truncation is counted.
	rep, _ = m.Validate(format.Options{}, bytePrep(prep.Options{MaxLen: 57}))
	if g := rep.Subjects[1].Splits[Train]; g.Truncated != 0 || g.DroppedNoLabel != 3 {
		t.Errorf("MaxLen 57 cuts every answer: truncated %d, dropped %d", g.Truncated, g.DroppedNoLabel)
	}
	rep, _ = m.Validate(format.Options{}, bytePrep(prep.Options{MaxLen: 62}))
	if g := rep.Subjects[1].Splits[Train]; g.Truncated != 3 || g.DroppedNoLabel != 0 {
		t.Errorf("MaxLen 62: truncated %d, want 3", g.Truncated)
	}
}

func TestValidateRecordsUnreadableFiles(t *testing.T) {
	files := map[string]string{"a/train.jsonl": qa("q", "a"), "a/test.jsonl": "{broken\n"}
	m, err := Open(writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Validate(format.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Subjects[0].Errors) != 1 || !strings.Contains(rep.Subjects[0].Errors[0], "test.jsonl:1:2") {
		t.Errorf("errors %v", rep.Subjects[0].Errors)
	}
	rep, _ = m.Validate(format.Options{Skip: true}, nil)
	if s := rep.Subjects[0].Splits[Test]; !strings.Contains(rep.Subjects[0].Errors[0], "empty dataset") || s.Skipped != 1 {
		t.Errorf("with skip: %+v %v", s, rep.Subjects[0].Errors)
	}
}

// TestSubjectYAMLTab: a tab in subject.yaml is named as such.
func TestSubjectYAMLTab(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "geo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "train.jsonl"), []byte(`{"text":"a"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "subject.yaml"), []byte("columns:\n\tprompt: q\n"), 0o644)
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), "subject.yaml") || !strings.Contains(err.Error(), "line 2 column 1: a tab character") {
		t.Errorf("got %v", err)
	}
}
