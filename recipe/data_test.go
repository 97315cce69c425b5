package recipe

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
)

// loadTestData reads data with the tiny base's text side.
func loadTestData(t *testing.T, o Options) (*dataset, string) {
	t.Helper()
	return loadWith(t, o, 0)
}

// loadLogged is loadData with the tiny base's text side and maxPositions
// (to count examples over them), and what it logged.
func loadLogged(t *testing.T, o Options, maxPositions int) (*dataset, string, error) {
	t.Helper()
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.Log = &log
	ds, err := loadData(context.Background(), o, tp, maxPositions)
	return ds, log.String(), err
}

func dataOptions() Options {
	o := Defaults()
	o.ModelDir, o.DataRoot, o.SeqLen, o.EvalQuestions = tinyBase, subjects, 96, 0
	return o
}

func rowSubjects(ds *dataset) map[string]int {
	n := map[string]int{}
	for _, r := range ds.train {
		n[ds.subjects[r.Subject]]++
	}
	return n
}

// TestMixingWeights: data.mixing weights with only chemistry weighted
// trains on chemistry rows only, and the losses differ from the default
// (proportional) run's.
func TestMixingWeights(t *testing.T) {
	o := dataOptions()
	o.Mixing, o.MixWeights = "weights", map[string]float64{"chemistry": 1, "geography": 0, "us-history": 0}
	ds, _ := loadTestData(t, o)
	got := rowSubjects(ds)
	if len(got) != 1 || got["chemistry"] != len(ds.train) {
		t.Fatalf("rows per subject %v, want chemistry only", got)
	}
	def, _ := loadTestData(t, dataOptions())
	if n := rowSubjects(def); len(n) != 3 {
		t.Fatalf("default mixing: rows per subject %v, want all three subjects", n)
	}

	run := func(o Options) []float64 {
		o.OutDir, o.Steps, o.BatchSize, o.WarmupSteps, o.EvalEvery, o.Samples, o.CheckpointEvery = t.TempDir(), 2, 2, 0, 0, 0, 0
		o.EvalMaxBatches = 1
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return res.Losses
	}
	if a, b := run(o), run(dataOptions()); slices.Equal(a, b) {
		t.Fatalf("weights mixing gave the default run's losses %v", a)
	}
}

// TestMixingErrors: a weight for a subject that is not selected, a
// negative weight, all zero and a missing weight are errors naming the key.
func TestMixingErrors(t *testing.T) {
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		w    map[string]float64
		want string
	}{
		{map[string]float64{"chemistry": 1, "geography": 1, "us-history": 1, "poetry": 1}, "data.weights.poetry"},
		{map[string]float64{"chemistry": -1, "geography": 1, "us-history": 1}, "data.weights.chemistry"},
		{map[string]float64{"chemistry": 0, "geography": 0, "us-history": 0}, "every weight is 0"},
		{map[string]float64{"chemistry": 1}, `no weight for subject "geography"`},
	} {
		o := dataOptions()
		o.Mixing, o.MixWeights = "weights", c.w
		if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("weights %v: error %v, want one naming %q", c.w, err, c.want)
		}
	}
	o := dataOptions()
	o.Mixing = "round-robin"
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "data.mixing") {
		t.Errorf("mixing round-robin: error %v, want one naming data.mixing", err)
	}
}

// TestMixingUniform: uniform mixing draws each subject about equally
// often, where proportional follows their sizes (us-history is the
// smallest, about a fifth of the rows).
func TestMixingUniform(t *testing.T) {
	o := dataOptions()
	o.Mixing = "uniform"
	ds, _ := loadTestData(t, o)
	u := rowSubjects(ds)
	def, _ := loadTestData(t, dataOptions())
	p := rowSubjects(def)
	if len(ds.train) != len(def.train) {
		t.Fatalf("uniform epoch has %d rows, proportional %d: want the same", len(ds.train), len(def.train))
	}
	third := float64(len(ds.train)) / 3
	if f := float64(u["us-history"]); f < 0.8*third || f > 1.2*third {
		t.Errorf("uniform: us-history has %v of %d rows, want about a third", f, len(ds.train))
	}
	if p["us-history"] >= p["chemistry"] {
		t.Errorf("proportional: us-history %d rows, chemistry %d: want fewer for the smaller subject", p["us-history"], p["chemistry"])
	}
}

// trainOnly copies one bundled subject without its validation file.
func trainOnly(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "chemistry")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"train.jsonl", "test.jsonl"} {
		b, err := os.ReadFile(filepath.Join(subjects, "chemistry", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestValSplitHoldsOut: a subject with only a train file gets a
// validation split of data.val_split of its examples, said in the log;
// the split depends on data.seed and no example is in both.
func TestValSplitHoldsOut(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.Pack, o.ValSplit = trainOnly(t), false, 0.2
	ds, log := loadTestData(t, o)
	// 495 examples: round(0.2·495) = 99 held out, 396 trained on.
	if len(ds.val) != 99 || len(ds.train) != 396 {
		t.Fatalf("%d validation and %d training rows, want 99 and 396", len(ds.val), len(ds.train))
	}
	if !strings.Contains(log, "99 of 495 training examples held out") {
		t.Errorf("the hold-out is not said: %s", log)
	}
	key := func(r prep.Row) string { return fmt.Sprint(r.InputIDs) } // the example's tokens
	inTrain := map[string]bool{}
	for _, r := range ds.train {
		inTrain[key(r)] = true
	}
	for _, r := range ds.val {
		if inTrain[key(r)] {
			t.Fatal("a validation example is also trained on")
		}
	}
	o.DataSeed = 7
	other, _ := loadTestData(t, o)
	same := 0
	for i := range other.val {
		if slices.Equal(other.val[i].InputIDs, ds.val[i].InputIDs) {
			same++
		}
	}
	if same == len(ds.val) {
		t.Fatal("data.seed 7 held out the same examples as 42")
	}
	o.ValSplit = 0
	none, _ := loadTestData(t, o)
	if len(none.val) != 0 {
		t.Fatalf("val_split 0 held out %d rows", len(none.val))
	}
}

// learntTokens counts the rows' learnt tokens.
func learntTokens(rows []prep.Row) int {
	n := 0
	for _, r := range rows {
		for _, l := range r.Learnt {
			if l {
				n++
			}
		}
	}
	return n
}

// TestTrainOnInputs: data.train_on_inputs puts labels on prompt tokens.
func TestTrainOnInputs(t *testing.T) {
	labelled := func(o Options) int {
		ds, _ := loadTestData(t, o)
		return learntTokens(ds.train)
	}
	o := dataOptions()
	o.Subjects = []string{"us-history"}
	base := labelled(o)
	o.TrainOnInputs = true
	if all := labelled(o); all <= 2*base {
		t.Fatalf("train_on_inputs: %d labelled tokens, answers only: %d: want the prompts learnt too", all, base)
	}
}

// TestMaskHistory: data.mask_history learns only each conversation's last
// answer: of two-turn conversations whose answers are alike, about half
// the tokens are learnt.
func TestMaskHistory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "turns.jsonl")
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d+1?"},{"role":"assistant","content":"It is %d."},{"role":"user","content":"And %d+2?"},{"role":"assistant","content":"It is %d."}]}`+"\n", i, i+1, i, i+2)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	learnt := func(mask bool) int {
		o := dataOptions()
		o.DataRoot, o.DataFiles, o.ValSplit, o.MaskHistory = "", []string{file}, 0, mask
		ds, _ := loadTestData(t, o)
		return learntTokens(ds.train)
	}
	all, last := learnt(false), learnt(true)
	if last == 0 || 2*last > all+all/10 || 2*last < all-all/10 {
		t.Errorf("mask_history: %d learnt tokens, %d without: want about half", last, all)
	}
}

// TestTokenCacheOfHeldOutSplit: with a token cache, a subject whose
// validation share is held out of its training file is cached whole, in
// the file `ftune data prepare` writes (no file of its own for the
// training split), and read back identical, with the counts of the
// examples truncated or dropped making it.
func TestTokenCacheOfHeldOutSplit(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.TokenCache = trainOnly(t), t.TempDir()
	o.SeqLen = 24 // some answers are cut
	first, firstLog := loadTestData(t, o)
	again, againLog := loadTestData(t, o)
	if len(first.train) != len(again.train) || !slices.Equal(first.train[0].InputIDs, again.train[0].InputIDs) {
		t.Fatal("rows read from the cache differ from the tokenised ones")
	}
	written := "data: subject chemistry: token cache " + filepath.Join(o.TokenCache, "chemistry", "train.tokens") + " written"
	if !strings.Contains(firstLog, written) || strings.Contains(againLog, written) {
		t.Errorf("the first load's log does not say it wrote the cache (or the second's does):\n%s\n--\n%s", firstLog, againLog)
	}
	if first.cached["chemistry"] || !again.cached["chemistry"] {
		t.Errorf("read from the cache: first load %v, second %v; want false, true", first.cached["chemistry"], again.cached["chemistry"])
	}
	if a, b := first.stats["chemistry"], again.stats["chemistry"]; a.Truncated == 0 || !reflect.DeepEqual(a, b) {
		t.Errorf("the cache's counts %+v, tokenising's %+v (want some truncated)", b, a)
	}
	files, _ := filepath.Glob(filepath.Join(o.TokenCache, "chemistry", "*.tokens"))
	if len(files) != 1 || filepath.Base(files[0]) != "train.tokens" {
		t.Fatalf("cache files %v, want the whole split's train.tokens", files)
	}
}

// TestTokenCacheOutOfVocabulary: a token cache whose ids run past the
// vocabulary (another model's cache, or damage) is refused naming the
// cache file and the document, before any id reaches the embedding.
func TestTokenCacheOutOfVocabulary(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.TokenCache = trainOnly(t), t.TempDir()
	loadTestData(t, o)
	files, _ := filepath.Glob(filepath.Join(o.TokenCache, "chemistry", "*.tokens"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The same key, so the cache is read rather than rebuilt.
	var key prep.CacheKey
	copy(key.Tokenizer[:], raw[16:48])
	copy(key.Template[:], raw[48:80])
	copy(key.Options[:], raw[80:112])
	copy(key.Data[:], raw[112:144])
	docs := []prep.Tokenized{{IDs: []int32{1, 2}, Labels: []int32{prep.IgnoreIndex, 2}}, {IDs: []int32{1, 1 << 30}, Labels: []int32{prep.IgnoreIndex, 1 << 30}}}
	if err := prep.WriteCache(files[0], key, docs); err != nil {
		t.Fatal(err)
	}
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loadData(context.Background(), o, tp, 0)
	if err == nil || !strings.Contains(err.Error(), files[0]) || !strings.Contains(err.Error(), "document 1") {
		t.Fatalf("loading an out-of-vocabulary cache: %v", err)
	}
}

// TestTokenCacheNotAFolder: a token cache where a file is refused naming
// the setting, not only the mkdir.
func TestTokenCacheNotAFolder(t *testing.T) {
	o := dataOptions()
	o.DataRoot, o.TokenCache = trainOnly(t), filepath.Join(t.TempDir(), "afile")
	if err := os.WriteFile(o.TokenCache, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadLogged(t, o, 0); err == nil || !strings.HasPrefix(err.Error(), "data.token_cache "+o.TokenCache+": mkdir ") {
		t.Errorf("a token cache that is a file: %v", err)
	}
}
