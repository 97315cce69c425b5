package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCommaLists: a bare a,b for a list of names is the list [a, b], as
// the list flags read it, from --set and from a file; a path list refuses
// it as ambiguous; a quoted "a,b" is one element.
func TestCommaLists(t *testing.T) {
	for _, tc := range []struct {
		set  string
		get  func(c *RunConfig) any
		want any
	}{
		{"training.lora.targets=q_proj,v_proj", func(c *RunConfig) any { return c.Training.LoRA.Targets }, []string{"q_proj", "v_proj"}},
		{"training.lora.targets=q_proj, v_proj ,o_proj", func(c *RunConfig) any { return c.Training.LoRA.Targets }, []string{"q_proj", "v_proj", "o_proj"}},
		{`training.lora.targets="a,b"`, func(c *RunConfig) any { return c.Training.LoRA.Targets }, []string{"a,b"}},
		{"training.lora.modules_to_save=embed_tokens,lm_head", func(c *RunConfig) any { return c.Training.LoRA.ModulesToSave }, []string{"embed_tokens", "lm_head"}},
		{"data.subjects=geography,chemistry", func(c *RunConfig) any { return c.Data.Subjects }, []string{"geography", "chemistry"}},
		{`data.files="a,b.jsonl"`, func(c *RunConfig) any { return c.Data.Files }, []string{"a,b.jsonl"}},
		{`data.files=[a.jsonl, "b,c.jsonl"]`, func(c *RunConfig) any { return c.Data.Files }, []string{"a.jsonl", "b,c.jsonl"}},
		{"data.files=a.jsonl", func(c *RunConfig) any { return c.Data.Files }, []string{"a.jsonl"}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			c := Default()
			if err := Apply(c, []string{tc.set}); err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}

	c, err := Parse([]byte("training:\n  lora:\n    targets: q_proj, v_proj\n"), "x.yaml")
	if err != nil || !reflect.DeepEqual(c.Training.LoRA.Targets, []string{"q_proj", "v_proj"}) {
		t.Fatalf("file targets: q_proj, v_proj: %v %q", err, c.Training.LoRA.Targets)
	}
	if w := c.Where("training.lora.targets"); w != "x.yaml:3" {
		t.Errorf("targets from %q, want x.yaml:3", w)
	}

	for _, tc := range []struct{ set, want string }{
		{"data.files=a.jsonl,b.jsonl", `--set data.files=a.jsonl,b.jsonl: data.files: "a.jsonl,b.jsonl" holds a comma, and a path may hold one too: write [a.jsonl, b.jsonl] for 2 paths, or ["a.jsonl,b.jsonl"] for one`},
		{"training.lora.targets=q_proj,,v_proj", `training.lora.targets: "q_proj,,v_proj" has an empty element between commas`},
		{"training.lora.targets=q_proj,", `training.lora.targets: "q_proj," has an empty element`},
		{"training.optimizer.betas=0.9,0.95", `training.optimizer.betas: want a list, got "0.9,0.95" (write a list in brackets: [0.9, 0.95])`},
	} {
		err := Apply(Default(), []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrBadValue) {
			t.Errorf("--set %s: %v\nwant %s", tc.set, err, tc.want)
		}
	}

	// A name holding a comma survives the run folder's config.yaml.
	c = Default()
	c.Data.Files, c.Data.Subjects = []string{"a,b.jsonl"}, []string{"a,b"}
	yml, err := Resolved(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(yml, "config.yaml")
	if err != nil || !reflect.DeepEqual(back.Data.Files, c.Data.Files) || !reflect.DeepEqual(back.Data.Subjects, c.Data.Subjects) {
		t.Fatalf("round trip: %v %q %q\n%s", err, back.Data.Files, back.Data.Subjects, yml)
	}
}

// TestEveryStringListKeyDecidesCommas walks RunConfig: each list of
// strings either splits a,b (names) or refuses it (paths). A new list key
// lands here and must be decided.
func TestEveryStringListKeyDecidesCommas(t *testing.T) {
	splits := []string{"data.subjects", "training.lora.targets", "training.lora.modules_to_save", "training.dpo.loss_type"}
	refuses := []string{"data.files"}
	var found []string
	for _, l := range leaves() {
		if !l.isStringList() {
			continue
		}
		p := l.path
		found = append(found, p)
		err := Apply(Default(), []string{p + "=a,b"})
		if slices.Contains(refuses, p) != (err != nil) {
			t.Errorf("%s=a,b: %v", p, err)
		}
		if (l.field.Tag.Get("path") != "") != slices.Contains(refuses, p) {
			t.Errorf("%s: path lists refuse a bare comma, name lists split it", p)
		}
	}
	slices.Sort(found)
	want := slices.Sorted(slices.Values(append(slices.Clone(splits), refuses...)))
	if !reflect.DeepEqual(found, want) {
		t.Errorf("lists of strings %q, decided %q: decide whether a comma separates the new key's elements", found, want)
	}
}

func TestMergeKeys(t *testing.T) {
	checkParseCases(t, []parseCase{
		{"explicit key wins", "x-base: &base {lr: 0.001, weight_decay: 0.5}\ntraining:\n  optimizer:\n    <<: *base\n    weight_decay: 0.1\n", "",
			func(c *RunConfig) bool {
				o := c.Training.Optimizer
				return o.LR == 0.001 && o.WeightDecay == 0.1 && c.Where("training.optimizer.lr") == "x.yaml:1" && c.Where("training.optimizer.weight_decay") == "x.yaml:5"
			}},
		{"explicit key before the merge wins too", "x-base: &base {lr: 0.001, weight_decay: 0.5}\ntraining:\n  optimizer: {weight_decay: 0.1, <<: *base}\n", "",
			func(c *RunConfig) bool {
				return c.Training.Optimizer.WeightDecay == 0.1 && c.Training.Optimizer.LR == 0.001
			}},
		{"earlier of a list wins", "x-a: &a {lr: 0.1}\nx-b: &b {lr: 0.2, eps: 0.5}\ntraining:\n  optimizer:\n    <<: [*a, *b]\n", "",
			func(c *RunConfig) bool { return c.Training.Optimizer.LR == 0.1 && c.Training.Optimizer.Eps == 0.5 }},
		{"nested merges", "x-a: &a {lr: 0.1, eps: 0.5}\nx-b: &b {<<: *a, lr: 0.2}\ntraining:\n  optimizer: {<<: *b}\n", "",
			func(c *RunConfig) bool { return c.Training.Optimizer.LR == 0.2 && c.Training.Optimizer.Eps == 0.5 }},
		{"merge is shallow", "x-t: &t {lora: {r: 4}, max_steps: 7}\ntraining:\n  <<: *t\n  lora: {alpha: 8}\n", "",
			func(c *RunConfig) bool {
				return c.Training.MaxSteps == 7 && c.Training.LoRA.R == Default().Training.LoRA.R && c.Training.LoRA.Alpha == 8
			}},
		{"between schema fields", "training:\n  optimizer: &o {lr: 0.1}\n  dpo: {beta: 0.2}\n  eval:\n    generation: {questions: 1}\n  early_stopping: {<<: *o}\n", "x.yaml:2: unknown key `lr` in training.early_stopping (merged by `<<` at line 6); did you mean `training.optimizer.lr`?", nil},
		{"into a map", "x-w: &w {math: 1, art: 2}\ndata:\n  weights: {<<: *w, art: 3}\n", "",
			func(c *RunConfig) bool {
				return reflect.DeepEqual(c.Data.Weights, map[string]float64{"math": 1, "art": 3})
			}},
		{"x- keys ignored", "x-anything: [1, {a: b}]\nx-base: &b {lr: 1}\n", "", func(c *RunConfig) bool { return reflect.DeepEqual(plain(c), plain(Default())) }},
		{"merged unknown key", "x-base: &base {lr: 0.001, rank: 3}\ntraining:\n  optimizer:\n    <<: *base\n",
			"x.yaml:1: unknown key `rank` in training.optimizer (merged by `<<` at line 4); did you mean", nil},
		{"merged bad value", "x-base: &base {lr: fast}\ntraining:\n  optimizer:\n    <<: *base\n",
			`x.yaml:1: training.optimizer.lr: want a number, got "fast" (merged by ` + "`<<`" + ` at line 4)`, nil},
		{"merged twice nested", "x-a: &a {rank: 1}\nx-b: &b {<<: *a}\ntraining:\n  lora: {<<: *b}\n",
			"x.yaml:1: unknown key `rank` in training.lora (merged by `<<` at line 4, through `<<` at line 2)", nil},
		{"anchor under an unmarked key", "base: &base {lr: 0.001}\ntraining:\n  optimizer:\n    <<: *base\n",
			"x.yaml:1: unknown key `base` at the top level (a block kept only for its anchor &base goes under a top-level key starting with x-, e.g. x-base: &base ..., which is ignored)", nil},
		{"x- only at the top level", "training:\n  x-base: 1\n", "x.yaml:2: unknown key `x-base` in training", nil},
		{"merge of a value", "x-s: &s 3\ntraining:\n  <<: *s\n", "x.yaml:3: training: `<<` merges the keys of a section (<<: *name, or <<: [*a, *b]), got \"3\"", nil},
		{"written twice still refused", "x-b: &b {lr: 1}\ntraining:\n  optimizer:\n    <<: *b\n    lr: 2\n    lr: 3\n", "x.yaml:6: training.optimizer.lr: set twice (first at line 5)", nil},
		{"two merge keys", "x-b: &b {lr: 1}\ntraining:\n  optimizer:\n    <<: *b\n    <<: *b\n", "x.yaml:5: training.optimizer.<<: set twice (first at line 4)", nil},
		{"quoted << is a key", "training:\n  \"<<\": {lr: 1}\n", "unknown key `<<` in training", nil},
	})
}

// TestMergeKeysBounded: merges of merges of the same blocks (billion
// laughs: 10^9 keys when expanded naively) read in time, since each block
// is expanded once.
func TestMergeKeysBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-l0: &l0 {lr: 0.001}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-l%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	b.WriteString("training:\n  optimizer: {<<: [" + strings.TrimSuffix(strings.Repeat("*l9, ", 10), ", ") + "]}\n")
	done := make(chan error, 1)
	var c *RunConfig
	go func() {
		var err error
		c, err = Parse([]byte(b.String()), "x.yaml")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if c.Training.Optimizer.LR != 0.001 {
			t.Fatalf("lr %v, want 0.001", c.Training.Optimizer.LR)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("merge keys expanded without bound")
	}
}

// TestScalarForListRecordsElementSource: one value given for a list (a
// list of one, or a,b split at commas) records its elements' source as
// the [a, b] form does, so that a check of an element names the file's
// line or the --set, not "set in code".
func TestScalarForListRecordsElementSource(t *testing.T) {
	cfg := Default()
	err := Apply(cfg, []string{"training.dpo.loss_type=bogus"})
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), `--set training.dpo.loss_type=bogus: training.dpo.loss_type[0]: "bogus" is not one of`) {
		t.Errorf("--set of one value: %v", err)
	}
	cfg, err = Parse([]byte("training:\n  objective: dpo\n  dpo:\n    loss_type: IPO\n"), "bad.yaml")
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:4: training.dpo.loss_type[0]: "IPO" is not one of`) {
		t.Errorf("one value in a file: %v", err)
	}

	// Every list of strings, by --set and in a file, one value and a,b.
	for _, l := range leaves() {
		if !l.isStringList() {
			continue
		}
		p, f := l.path, l.field
		values := []string{"x"}
		if f.Tag.Get("path") == "" {
			values = append(values, "x,y")
		}
		for _, val := range values {
			c := Default()
			set := p + "=" + val
			if err := Apply(c, []string{set}); err != nil {
				t.Fatalf("--set %s: %v", set, err)
			}
			for i := range strings.Count(val, ",") + 1 {
				if got := c.Where(fmt.Sprintf("%s[%d]", p, i)); got != "--set "+set {
					t.Errorf("--set %s: Where(%s[%d]) = %q", set, p, i, got)
				}
			}
			// The same key in a file: its value on the last line.
			yml := runFile(p, val)
			c, err := Parse([]byte(yml), "x.yaml")
			if err != nil {
				t.Fatalf("%s: %v", yml, err)
			}
			for i := range strings.Count(val, ",") + 1 {
				if got, want := c.Where(fmt.Sprintf("%s[%d]", p, i)), fmt.Sprintf("x.yaml:%d", strings.Count(p, ".")+1); got != want {
					t.Errorf("%s: Where(%s[%d]) = %q, want %q", strings.TrimSpace(yml), p, i, got, want)
				}
			}
		}
	}
}
