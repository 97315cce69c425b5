package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// plain strips where values came from, for comparing contents.
func plain(c *RunConfig) RunConfig {
	out := *c.Clone()
	out.src, out.written, out.file = nil, nil, ""
	return out
}

// initTop is the first line `ftune init` writes: a file beginning with
// it is read as one ftune wrote (RunConfig.Chose).
var initTop = "# " + strings.SplitN(initHeader, "\n", 2)[0] + "\n"

func TestWriteInitParsesToDefault(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteInit(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	got, err := Parse(buf.Bytes(), "init.yaml")
	if err != nil {
		t.Fatalf("init file does not parse: %v\n%s", err, text)
	}
	if !reflect.DeepEqual(plain(got), plain(Default())) {
		t.Fatalf("init file parses to\n%+v\nwant Default()\n%+v", plain(got), plain(Default()))
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	// Every key is present and commented: count keys against allPaths.
	for _, p := range allPaths {
		key := lastElem(p) + ":"
		if !strings.Contains(text, key) {
			t.Errorf("init file lacks %s", p)
		}
	}
	if n := strings.Count(text, "\n#") + strings.Count(text, "\n  #"); n < 20 {
		t.Errorf("init file has %d comment lines, want one per key", n)
	}
}

func TestResolvedRoundTrip(t *testing.T) {
	t.Setenv("FTUNE_TEST_MODELS", "/models")
	t.Setenv("FTUNE_TEST_DATA", "/data")
	t.Setenv("HOME", "/home/u")
	for _, tc := range []struct {
		name string
		cfg  func() *RunConfig
	}{
		{"default", Default},
		{"qlora file", func() *RunConfig {
			c, err := Load("testdata/qlora.yaml")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"odd values", func() *RunConfig {
			c := Default()
			c.Training.Optimizer.LR = 1.0 / 3
			c.Training.LoRA.Alpha = 16
			c.Training.MaxTime = Duration(90 * time.Second)
			c.Data.Template = "templates/my chat: v2.jinja"
			c.Training.Tracking.RunName = "a-b.c"
			c.Data.Weights = map[string]float64{"z.sub": 0.5, "a": 1e-9}
			c.Data.Subjects = []string{"true", "1e3", "null", "- x", "#hash"} // must be quoted to stay strings
			c.Model.Path = "./~/models/yes"                                   // a folder named ~: a leading ~/ is the home directory
			return c
		}},
		{"paths holding $ and a leading ~", func() *RunConfig {
			// As set in code or expanded from a file: written so that
			// reading them back (ExpandPath) gives them as they are.
			c := Default()
			c.Data.Files = []string{"/data/cost$5.jsonl", "${not a variable}.jsonl"}
			c.Data.TokenCache = "/tmp/$HOME/tokens"
			c.Model.Path = "./~/models/yes"
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			yml, err := Resolved(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(yml, "config.yaml")
			if err != nil {
				t.Fatalf("%v\n%s", err, yml)
			}
			if !reflect.DeepEqual(plain(back), plain(c)) {
				t.Fatalf("round trip changed the config:\n%s\ngot  %+v\nwant %+v", yml, plain(back), plain(c))
			}
			// The header alone is a comment: it says ftune wrote the
			// file, so a default in it stays the default (Chose).
			header := "# " + strings.ReplaceAll(resolvedHeader, "\n", "\n# ") + "\n"
			body, ok := bytes.CutPrefix(yml, []byte(header))
			if !ok || bytes.Contains(body, []byte("\n#")) || bytes.Contains(body, []byte(" # ")) {
				t.Errorf("resolved config has comments other than its header:\n%s", yml)
			}
			if back.Chose("training.schedule.warmup_steps") != !c.IsDefault("training.schedule.warmup_steps") {
				t.Errorf("read back, warmup_steps %d counts as chosen: %v", back.Training.Schedule.WarmupSteps, back.Chose("training.schedule.warmup_steps"))
			}
		})
	}
}

func TestLoadQLoRAFile(t *testing.T) {
	t.Setenv("FTUNE_TEST_MODELS", "/models")
	t.Setenv("FTUNE_TEST_DATA", "/data")
	t.Setenv("HOME", "/home/u")
	c, err := Load("testdata/qlora.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"model.path expanded", c.Model.Path, "/models/SmolLM2-135M"},
		{"data.root expanded", c.Data.Root, "/data/subjects"},
		{"output_dir expanded", c.Training.Tracking.OutputDir, "/home/u/ftune-runs"},
		{"scalar targets", c.Training.LoRA.Targets, []string{"all-linear"}},
		{"lr 1e-4", c.Training.Optimizer.LR, 1e-4},
		{"betas", c.Training.Optimizer.Betas, []float64{0.9, 0.95}},
		{"weights", c.Data.Weights, map[string]float64{"math": 2, "history": 1}},
		{"max_time", time.Duration(c.Training.MaxTime), 90 * time.Minute},
		{"block size", c.Training.Quantization.BlockSize, 64},
		{"untouched default kept", c.Training.Quantization.DoubleQuant, true},
		{"untouched default eps", c.Training.Optimizer.Eps, 1e-8},
		{"where lr", c.Where("training.optimizer.lr"), "testdata/qlora.yaml:28"},
		{"where default", c.Where("training.optimizer.eps"), "default"},
		{"where list element", c.Where("data.subjects"), "testdata/qlora.yaml:13"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/typos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "typos.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %T %v", err, err)
	}
	want := []string{
		"typos.yaml:4: unknown key `load_in_4bits` in model; did you mean `load_in_4bit`?",
		"typos.yaml:6: unknown key `learning_rate` in training; did you mean `training.optimizer.lr`?",
		`typos.yaml:8: training.optimizer.lr: want a number, got "fast"`,
		"typos.yaml:9: unknown key `beta` in training.optimizer; did you mean `betas`?",
		"typos.yaml:11: unknown key `rank` in training.lora; did you mean `r`?",
		"typos.yaml:12: training.lora.alpha: want a single value, got a list",
		"typos.yaml:13: unknown key `batch` in training; did you mean `batch_size`?",
		`typos.yaml:14: training.max_epochs: want a whole number, got "1.5"`,
	}
	if len(list) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i := range min(len(list), len(want)) {
		if list[i].Error() != want[i] {
			t.Errorf("error %d:\n got  %s\n want %s", i, list[i], want[i])
		}
	}
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrBadValue) {
		t.Errorf("errors.Is should see both kinds in %v", err)
	}
}

// parseCase is one document for Parse (named x.yaml): the error it must
// give, or ("" ) the check its config must pass.
type parseCase struct {
	name, yaml string
	wantErr    string // "" = must parse
	check      func(c *RunConfig) bool
}

// checkParseCases parses each case: a wanted error must name x.yaml's line
// and contain wantErr; "no suggestion for nonsense" must also offer none.
func checkParseCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "x.yaml")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !tc.check(c) {
					t.Fatalf("parsed to %+v", plain(c))
				}
				return
			}
			if err == nil {
				t.Fatalf("parsed, want error %q", tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "x.yaml:") {
				t.Errorf("error does not start with file:line: %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error\n %v\nwant it to contain\n %s", err, tc.wantErr)
			}
			if tc.name == "no suggestion for nonsense" && strings.Contains(err.Error(), "did you mean") {
				t.Fatalf("suggested something for nonsense: %v", err)
			}
		})
	}
}

func TestParseSmallCases(t *testing.T) {
	checkParseCases(t, []parseCase{
		{"empty file is defaults", "", "", func(c *RunConfig) bool { return reflect.DeepEqual(plain(c), plain(Default())) }},
		{"comment only", "# nothing\n", "", func(c *RunConfig) bool { return c.Training.BatchSize == 8 }},
		{"empty section keeps defaults", "training:\n  lora:\n", "", func(c *RunConfig) bool { return c.Training.LoRA.R == Default().Training.LoRA.R }},
		{"null list clears", "training:\n  lora:\n    targets: ~\n", "", func(c *RunConfig) bool { return c.Training.LoRA.Targets == nil }},
		{"quoted number accepted", "training:\n  max_steps: \"40\"\n", "", func(c *RunConfig) bool { return c.Training.MaxSteps == 40 }},
		{"underscores", "training:\n  max_steps: 1_000\n", "", func(c *RunConfig) bool { return c.Training.MaxSteps == 1000 }},
		{"duration seconds", "training:\n  max_time: 90\n", "", func(c *RunConfig) bool { return c.Training.MaxTime == Duration(90*time.Second) }},
		{"anchors", "data:\n  subjects: &s [a, b]\n  weights: {a: 1, b: 2}\n", "", func(c *RunConfig) bool { return len(c.Data.Subjects) == 2 }},
		{"unknown top-level", "modle:\n  path: x\n", "x.yaml:1: unknown key `modle` at the top level; did you mean `model`?", nil},
		{"section given a value", "training: 3\n", `x.yaml:1: training: want a section of keys, got "3"`, nil},
		{"duplicate key", "training:\n  seed: 1\n  seed: 2\n", "x.yaml:3: training.seed: set twice (first at line 2)", nil},
		{"bool typo", "model:\n  load_in_4bit: yes please\n", `x.yaml:2: model.load_in_4bit: want true or false, got "yes please"`, nil},
		{"int for bool", "model:\n  load_in_4bit: 1\n", `want true or false, got "1"`, nil},
		{"bad duration", "training:\n  max_time: soon\n", `x.yaml:2: training.max_time: want a duration such as 30m or 1h30m, got "soon"`, nil},
		{"negative seed", "training:\n  seed: -1\n", `x.yaml:2: training.seed: want a whole number >= 0, got "-1"`, nil},
		{"unset env var", "model:\n  path: $FTUNE_SURELY_UNSET/m\n", "x.yaml:2: model.path: environment variable $FTUNE_SURELY_UNSET is not set", nil},
		{"yaml syntax", "model:\n  path: [a\n", "did not find expected ',' or ']'", nil}, // yaml's own line number
		{"tab indentation", "model:\n\tpath: a\n", "x.yaml:2: a tab at column 1: tabs cannot indent YAML (indent with spaces)", nil},
		{"tab after spaces", "training:\n  lora:\n  \tr: 4\n", "x.yaml:3: a tab at column 3: tabs cannot indent YAML", nil},
		{"no suggestion for nonsense", "training:\n  zzzzzz: 1\n", "x.yaml:2: unknown key `zzzzzz` in training", nil},
		{"duplicate key in a map", "data:\n  mixing: weights\n  weights: {math: 1, math: 2}\n", "x.yaml:3: data.weights.math: set twice (first at line 3)", nil},
		{"duplicate key in a block map", "data:\n  weights:\n    math: 1\n    math: 2\n", "x.yaml:4: data.weights.math: set twice (first at line 3)", nil},
		{"second document", "training:\n  max_steps: 5\n---\ntraining:\n  max_steps: 9\n", "x.yaml:4: a second YAML document (after ---)", nil},
		{"second document, syntax error", "training:\n  max_steps: 5\n---\nmodel: [a\n", "did not find expected", nil},
		{"leading document marker", "---\ntraining:\n  max_steps: 5\n", "", func(c *RunConfig) bool { return c.Training.MaxSteps == 5 }},
		{"trailing document marker", "training:\n  max_steps: 5\n---\n# nothing here\n", "", func(c *RunConfig) bool { return c.Training.MaxSteps == 5 }},
		{"max_time overflow", "training:\n  max_time: 1e20\n", "x.yaml:2: training.max_time: 1e20 seconds is out of range: a duration is at most 2562047h47m16.854775807s", nil},
		{"max_time inf", "training:\n  max_time: inf\n", "x.yaml:2: training.max_time: inf seconds is out of range", nil},
		{"max_time nan", "training:\n  max_time: nan\n", "x.yaml:2: training.max_time: nan seconds is out of range", nil},
		{"max_time -inf", "training:\n  max_time: -inf\n", "x.yaml:2: training.max_time: -inf seconds is out of range", nil},
		{"max_time rounds to 0", "training:\n  max_time: 1e-12\n", "x.yaml:2: training.max_time: 1e-12 seconds is under a nanosecond and would round to 0", nil},
		{"max_time duration rounds to 0", "training:\n  max_time: 0.5ns\n", "x.yaml:2: training.max_time: 0.5ns is under a nanosecond", nil},
		{"max_time zero", "training:\n  max_time: 0.0\n", "", func(c *RunConfig) bool { return c.Training.MaxTime == 0 }},
		{"max_time one nanosecond", "training:\n  max_time: 1e-9\n", "", func(c *RunConfig) bool { return c.Training.MaxTime == 1 }},
	})
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("FT_A", "/a")
	t.Setenv("FT_EMPTY", "")
	for _, tc := range []struct{ in, want, err string }{
		{"plain/path", "plain/path", ""},
		{"$FT_A/x", "/a/x", ""},
		{"${FT_A}x", "/ax", ""},
		{"pre${FT_EMPTY}post", "prepost", ""}, // set but empty is allowed
		{"cost$$5", "cost$5", ""},
		{"$FT_NOPE/x", "", "$FT_NOPE is not set"},
		{"${FT_NOPE}${FT_NOPE2}", "", "$FT_NOPE, $FT_NOPE2 is not set"},
	} {
		got, err := ExpandEnv(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandEnv(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

// TestRetiredKeyLoadsWithANotice: a run file written by an older ftune
// init holds training.step_arena, a setting that no longer exists; it
// still loads, and the notice names the file and line, the key and why it
// is ignored. A --set of it says the same; a misspelt key stays an error.
func TestRetiredKeyLoadsWithANotice(t *testing.T) {
	cfg, err := Parse([]byte("training:\n  max_steps: 3\n  step_arena: false\n"), "old.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Training.MaxSteps != 3 {
		t.Fatalf("max_steps %d, want 3", cfg.Training.MaxSteps)
	}
	n := cfg.Notices()
	if len(n) != 1 || !strings.HasPrefix(n[0], "old.yaml:3: training.step_arena is retired and ignored: ") {
		t.Fatalf("notices %q", n)
	}
	if err := Apply(cfg, []string{"training.step_arena=true"}); err != nil {
		t.Fatal(err)
	}
	if n := cfg.Clone().Notices(); len(n) != 2 || !strings.HasPrefix(n[1], "--set training.step_arena=true: training.step_arena is retired") {
		t.Fatalf("notices after --set %q", n)
	}
	if _, err := Parse([]byte("training:\n  step_arenas: false\n"), "old.yaml"); err == nil {
		t.Fatal("a misspelt key loaded")
	}
}

// TestInitDataFilesComment: the comment ftune init writes above
// data.files says how files become subjects: several files are one
// subject, "data" (data.subjects picks files by name); it said "one
// subject per file, named after it".
func TestInitDataFilesComment(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteInit(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	i := strings.Index(text, "\n  files:")
	if i < 0 {
		t.Fatalf("init file lacks data.files:\n%s", text)
	}
	comment := text[strings.LastIndex(text[:i], "\n  # Data files")+1 : i]
	comment = strings.ReplaceAll(comment, "\n  # ", " ") // the lines wrapped, as one text
	if strings.Contains(comment, "one subject per file") || !strings.Contains(comment, `one subject, "data"`) {
		t.Errorf("data.files comment:\n%s\nwant it to say several files are one subject, \"data\"", comment)
	}
}
