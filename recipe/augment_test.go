package recipe

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/train"
)

// capitalsSubject writes a subject of capital questions: 12 distinct ones
// plus 4 repeats, in two phrasings, with phrasings in subject.yaml.
func capitalsSubject(t *testing.T, phrasings bool) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "capitals")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	countries := []string{"Peru", "Chad", "Laos", "Fiji", "Mali", "Oman", "Cuba", "Iran", "Iraq", "Togo", "Niger", "Nepal"}
	var b strings.Builder
	for i, c := range append(countries, countries[:4]...) { // the last 4 repeat the first 4
		q := "What is the capital of " + c + "?"
		if i%2 == 1 {
			q = "Name the capital city of " + c + "."
		}
		b.WriteString(`{"messages": [{"role": "user", "content": "` + q + `"}, {"role": "assistant", "content": "The capital of ` + c + `."}]}` + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "train.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "description: capitals\n"
	if phrasings {
		yaml += "phrasings:\n  - [\"What is the capital of {country}?\", \"Name the capital city of {country}.\", \"Which city is the capital of {country}?\"]\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "subject.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestAugmentDedup: data.augment.dedup drops the repeated examples before
// the validation share is held out, and says so.
func TestAugmentDedup(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.Pack, o.ValSplit = capitalsSubject(t, false), false, 0.25
	plain, _ := loadTestData(t, o)
	o.Dedup = 0.9
	dd, log := loadTestData(t, o)
	if len(plain.train)+len(plain.val) != 16 || len(dd.train)+len(dd.val) != 12 {
		t.Fatalf("%d+%d rows without dedup, %d+%d with: want 16 and 12", len(plain.train), len(plain.val), len(dd.train), len(dd.val))
	}
	if !strings.Contains(log, "4 near-duplicate training examples dropped") || !strings.Contains(log, "3 of 12 training examples held out") {
		t.Errorf("log: %s", log)
	}
}

// TestAugmentRephrase: data.augment.rephrase rewrites training
// instructions with the subject.yaml phrasings (validation untouched), and
// is refused when no subject has phrasings.
func TestAugmentRephrase(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.Pack, o.ValSplit = capitalsSubject(t, true), false, 0.25
	plain, _ := loadTestData(t, o)
	o.Rephrase = 1
	rp, log := loadTestData(t, o)
	if !strings.Contains(log, "12 of 12 training instructions rephrased") {
		t.Errorf("log: %s", log)
	}
	changed := 0
	for i := range rp.train {
		if !equalRows(rp.train[i], plain.train[i]) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("rephrasing changed no training row")
	}
	for i := range rp.val {
		if !equalRows(rp.val[i], plain.val[i]) {
			t.Fatal("rephrasing changed a validation row")
		}
	}
	o.DataRoot = capitalsSubject(t, false)
	tp, _ := LoadText(tinyBase, 0)
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "data.augment.rephrase") {
		t.Fatalf("rephrase without phrasings: %v", err)
	}
}

func equalRows(a, b prep.Row) bool { return slices.Equal(a.InputIDs, b.InputIDs) }

// TestAugmentPromptDropout: data.augment.prompt_dropout replaces prompt
// tokens by the pad token in training batches, never answers or special
// tokens, and differently in each epoch.
func TestAugmentPromptDropout(t *testing.T) {
	o := dataOptions()
	o.Subjects, o.PromptDropout = []string{"us-history"}, 0.5
	ds, _ := loadTestData(t, o)
	tp, _ := LoadText(tinyBase, 0)
	l, err := train.NewRowLoader(ds.train, ds.subjects, 4, false, 0, tp.pad, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Augment = ds.augment
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	ids, labels := b.InputIDs.I64(), b.Labels.I64()
	T := b.InputIDs.Dim(1)
	dropped := 0
	for r := range 4 {
		row := ds.train[r]
		for i, id := range row.InputIDs[:min(len(row.InputIDs), T)] {
			got := ids[r*T+i]
			if labels[r*T+i] != int64(row.Label(i)) {
				t.Fatal("a label changed")
			}
			if got == int64(id) {
				continue
			}
			if row.Learnt[i] || tp.tok.IsSpecial(int(id)) || got != int64(tp.pad) {
				t.Fatalf("token %d of row %d: %d became %d (label %d)", i, r, id, got, row.Label(i))
			}
			dropped++
		}
	}
	if dropped == 0 {
		t.Fatal("no prompt token was dropped")
	}
	l.StartEpoch(1)
	b1, _ := l.Next()
	if slices.Equal(b1.InputIDs.I64(), ids) {
		t.Fatal("epoch 1 dropped the same tokens as epoch 0")
	}
	o.PromptDropout = 1
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "data.augment.prompt_dropout") {
		t.Fatalf("prompt_dropout 1: %v", err)
	}
}
