package quizgen

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/subject"
)

const (
	quizDir     = "../../../assets/data/quiz"
	subjectsDir = "../../../assets/data/subjects"
)

func TestPatterns(t *testing.T) {
	for _, tc := range []struct{ in, full, short string }{
		{"France", "France", "France"},
		{"{G{eorge} }Washington", "George Washington", "George Washington"},
		{"{J{ohn} }{Q{uincy} }Adams", "John Quincy Adams", "John Adams"},
		{"Bra[z|s]il", "Brazil", "Brazil"},
		{"Bras['i|i'|i]lia", "Brasilia", "Brasilia"},
		{"K[o|o/|/o]benhavn", "Kobenhavn", "Kobenhavn"},
		{"Vienna|Wien", "Vienna", "Vienna"},
		{"Central Africa{n Rep{ublic}}", "Central African Republic", "Central Africa"},
		{"{T{heodore|eddy} }Roosevelt|TR", "Theodore Roosevelt", "Theodore Roosevelt"},
		{"{G{rover} }Cleveland{ (1st term)}", "Grover Cleveland (1st term)", "Grover Cleveland"},
		{"1789-{17}97", "1789-1797", "1789-97"},
		{"[N|n]one{ (1841-5)}", "None (1841-5)", "None"},
	} {
		a, err := parsePattern(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := a.full(); got != tc.full {
			t.Errorf("full(%q) = %q, want %q", tc.in, got, tc.full)
		}
		if got := a.short(); got != tc.short {
			t.Errorf("short(%q) = %q, want %q", tc.in, got, tc.short)
		}
	}
	for _, bad := range []string{"{open", "[a|b", "x}y"} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("parsePattern(%q) accepted an unbalanced pattern", bad)
		}
	}
}

func TestReadRecords(t *testing.T) {
	got := readRecords("a:b\nlong:\\\ncontinued:{x:y}\n\n")
	want := [][]string{{"a", "b"}, {"long", "continued", "{x:y}"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// TestBundledFilesAreGenerated fails when assets/data/subjects differs
// from what the generator makes: rerun go run ./internal/cmd/gen-quiz.
func TestBundledFilesAreGenerated(t *testing.T) {
	files, err := Generate(os.DirFS(quizDir), DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	err = filepath.WalkDir(subjectsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(subjectsDir, p)
		onDisk = append(onDisk, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var generated []string
	for name, want := range files {
		generated = append(generated, name)
		got, err := os.ReadFile(filepath.Join(subjectsDir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run go run ./internal/cmd/gen-quiz", name)
		}
	}
	sort.Strings(onDisk)
	sort.Strings(generated)
	if !reflect.DeepEqual(onDisk, generated) {
		t.Errorf("files on disk %v, generated %v", onDisk, generated)
	}
}

func TestGenerateIsDeterministicPerSeed(t *testing.T) {
	a, _ := Generate(os.DirFS(quizDir), 1)
	b, _ := Generate(os.DirFS(quizDir), 1)
	c, _ := Generate(os.DirFS(quizDir), 2)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different files")
	}
	if reflect.DeepEqual(a["geography/train.jsonl"], c["geography/train.jsonl"]) {
		t.Error("different seeds, same train file")
	}
}

func readJSONL(t *testing.T, b []byte) []format.Example {
	t.Helper()
	var out []format.Example
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var ex format.Example
		if err := json.Unmarshal(line, &ex); err != nil {
			t.Fatal(err)
		}
		out = append(out, ex)
	}
	return out
}

// TestHeldOutFactsAreTrainedWithOtherWording checks the split design: every
// val/test answer is trained (same answer, a question naming the same
// thing), never with the same question.
func TestHeldOutFactsAreTrainedWithOtherWording(t *testing.T) {
	files, err := Generate(os.DirFS(quizDir), DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Subjects {
		train := readJSONL(t, files[s.Name+"/train.jsonl"])
		questions := map[string]bool{}
		for _, ex := range train {
			if len(ex.Messages) != 2 || ex.Messages[0].Role != "user" || ex.Messages[1].Role != "assistant" {
				t.Fatalf("%s: example %+v is not one question and one answer", s.Name, ex)
			}
			if a := ex.Messages[1].Content; len(a) > 48 || a == "" {
				t.Errorf("%s: answer %q is not short", s.Name, a)
			}
			if questions[ex.Messages[0].Content] {
				t.Errorf("%s: train asks %q twice", s.Name, ex.Messages[0].Content)
			}
			questions[ex.Messages[0].Content] = true
		}
		if len(train) < 200 {
			t.Errorf("%s: %d train examples, want a few hundred", s.Name, len(train))
		}
		for _, split := range []string{"val", "test"} {
			held := readJSONL(t, files[s.Name+"/"+split+".jsonl"])
			if len(held) < len(train)/12 {
				t.Errorf("%s %s: %d examples for %d trained", s.Name, split, len(held), len(train))
			}
			for _, ex := range held {
				q, a := ex.Messages[0].Content, ex.Messages[1].Content
				if questions[q] {
					t.Errorf("%s %s: %q is also a train question", s.Name, split, q)
				}
				found := false
				for _, tr := range train {
					if tr.Messages[1].Content == a && sameSlot(tr.Messages[0].Content, q) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("%s %s: fact %q -> %q is not trained", s.Name, split, q, a)
				}
			}
		}
	}
}

// sameSlot reports whether two questions of one relation name the same
// thing: some phrasing of a's relation, filled with a's slot, gives b.
func sameSlot(a, b string) bool {
	for _, list := range phrasings {
		for _, pa := range list {
			pre, suf, _ := strings.Cut(pa, "{x}")
			if !strings.HasPrefix(a, pre) || !strings.HasSuffix(a, suf) || len(a) < len(pre)+len(suf) {
				continue
			}
			x := a[len(pre) : len(a)-len(suf)]
			for _, pb := range list {
				if strings.ReplaceAll(pb, "{x}", x) == b {
					return true
				}
			}
		}
	}
	return false
}

// TestBundledSubjectsValidate opens the bundled root with the subject
// manager: three subjects, no unreadable file, no example in two splits.
func TestBundledSubjectsValidate(t *testing.T) {
	m, err := subject.Open(subjectsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subjects) != 3 {
		t.Fatalf("%d subjects", len(m.Subjects))
	}
	rep, err := m.Validate(format.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("bundled data does not validate:\n%s", rep)
	}
	for _, s := range rep.Subjects {
		for _, split := range subject.Splits {
			if sp := s.Splits[split]; !sp.Present || sp.Examples == 0 || sp.Duplicates != 0 {
				t.Errorf("%s %s: %+v", s.Name, split, sp)
			}
		}
	}
	t.Logf("\n%s", rep)
}
