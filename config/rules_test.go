package config

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

// TestCloneSharesNothing sets every slice and map of a config to a
// non-empty value, clones it, changes every slice element and map entry of
// the clone, and checks the original did not change: a slice or map field
// added later and not copied fails here.
func TestCloneSharesNothing(t *testing.T) {
	orig, want := Default(), Default() // want: the same values, built apart (not by Clone)
	n := fill(reflect.ValueOf(orig).Elem())
	fill(reflect.ValueOf(want).Elem())
	if n < 5 {
		t.Fatalf("filled %d slices and maps; the walk is broken", n)
	}
	c := orig.Clone()
	mutate(reflect.ValueOf(c).Elem())
	if !reflect.DeepEqual(*orig, *want) {
		t.Fatalf("changing the clone changed the original:\n got  %+v\n want %+v", *orig, *want)
	}
	if reflect.DeepEqual(*c, *want) {
		t.Fatal("the mutation changed nothing: the test is broken")
	}
}

// fill gives every nil or empty slice and map below v one element, and
// counts the slices and maps.
func fill(v reflect.Value) int {
	n := 0
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				n += fill(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		n++
	case reflect.Map:
		if v.Len() == 0 {
			v.Set(reflect.MakeMap(v.Type()))
			v.SetMapIndex(reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem())
		}
		n++
	}
	return n
}

// mutate changes every element of every slice and the value of every map
// entry below v in place (what a shared backing array or map would show).
func mutate(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				mutate(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			change(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			change(e)
			v.SetMapIndex(k, e)
		}
		v.SetMapIndex(reflect.ValueOf("added-by-mutate").Convert(v.Type().Key()), reflect.New(v.Type().Elem()).Elem())
	}
}

func change(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "-changed")
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		panic("change: add a case for " + v.Type().String())
	}
}

// TestWarmupOneRule: the default warmup on a run shorter than it is
// scaled with a note, wherever the 10 came from; any other warmup longer
// than the run is refused, wherever it came from, code included.
func TestWarmupOneRule(t *testing.T) {
	var init bytes.Buffer
	if err := WriteInit(&init); err != nil {
		t.Fatal(err)
	}
	fromInit, err := Parse(init.Bytes(), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(init.String(), "\n") {
		if strings.TrimSpace(l) == "warmup_steps: 10" {
			line = i + 1
		}
	}
	for name, cfg := range map[string]*RunConfig{"default": Default(), "init file": fromInit} {
		if err := ApplyFlag(cfg, "--max-steps", "training.max_steps", "5"); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s, --max-steps 5: %v", name, err)
		}
		steps, note := cfg.Warmup()
		if steps != 0 || !strings.Contains(note, "training.schedule.warmup_steps: the default 10 warmup steps are more than a tenth of training.max_steps (5): the run warms up for 0") {
			t.Fatalf("%s: warmup %d, note %q", name, steps, note)
		}
		if name == "init file" && !strings.HasPrefix(note, "run.yaml:"+strconv.Itoa(line)+": ") {
			t.Fatalf("init file: note %q does not name run.yaml:%d", note, line)
		}
	}
	// Set in code: refused, naming it (it used to validate and run with
	// warmup 0).
	cfg := Default()
	cfg.Training.Schedule.WarmupSteps, cfg.Training.MaxSteps = 50, 4
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "training.schedule.warmup_steps (set in code): 50 warmup steps exceed training.max_steps (4)") {
		t.Fatalf("got %v", err)
	}
	// A warmup that fits is used as given, without a note.
	cfg.Training.Schedule.WarmupSteps = 3
	if steps, note := cfg.Warmup(); steps != 3 || note != "" {
		t.Fatalf("warmup %d note %q", steps, note)
	}
}

// TestWarmupChosen: 10 warmup steps the user wrote (by hand in a run
// file, or --set) are the user's, kept without a note where they fit a
// short run and refused where they exceed it; the 10 of Default(), of
// the file ftune init wrote and of a run's record (which names every
// key, with or without its header) is the default, scaled.
func TestWarmupChosen(t *testing.T) {
	hand := "training:\n  schedule:\n    warmup_steps: 10\n"
	var init bytes.Buffer
	if err := WriteInit(&init); err != nil {
		t.Fatal(err)
	}
	record, err := Resolved(Default())
	if err != nil {
		t.Fatal(err)
	}
	oldRecord := record[bytes.Index(record, []byte("\nmodel:"))+1:] // as runs before the header wrote it
	for _, c := range []struct {
		name   string
		cfg    func() (*RunConfig, error)
		chosen bool
		warmup int // at max_steps 50
	}{
		{"Default()", func() (*RunConfig, error) { return Default(), nil }, false, 5},
		{"ftune init's file", func() (*RunConfig, error) { return Parse(init.Bytes(), "run.yaml") }, false, 5},
		{"a run's config.yaml", func() (*RunConfig, error) { return Parse(record, "config.yaml") }, false, 5},
		{"an older record, by ParseRecord", func() (*RunConfig, error) { return ParseRecord(oldRecord, "config.yaml") }, false, 5},
		{"an older record copied as a run file", func() (*RunConfig, error) { return Parse(oldRecord, "run.yaml") }, true, 10},
		{"by hand", func() (*RunConfig, error) { return Parse([]byte(hand), "run.yaml") }, true, 10},
		{"by hand, with a byte-order mark", func() (*RunConfig, error) { return Parse([]byte("\ufeff"+hand), "run.yaml") }, true, 10},
		{"--set", func() (*RunConfig, error) {
			cfg := Default()
			return cfg, Apply(cfg, []string{"training.schedule.warmup_steps=10"})
		}, true, 10},
		{"--set over ftune init's file", func() (*RunConfig, error) {
			cfg, err := Parse(init.Bytes(), "run.yaml")
			if err != nil {
				return nil, err
			}
			return cfg, Apply(cfg, []string{"training.schedule.warmup_steps=10"})
		}, true, 10},
	} {
		cfg, err := c.cfg()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cfg = cfg.Clone() // Clone keeps where each value came from
		if got := cfg.Chose("training.schedule.warmup_steps"); got != c.chosen {
			t.Errorf("%s: Chose = %v, want %v", c.name, got, c.chosen)
		}
		cfg.Training.MaxSteps = 50
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		steps, note := cfg.Warmup()
		if steps != c.warmup || (note == "") != c.chosen {
			t.Errorf("%s, max_steps 50: warmup %d, note %q; want %d", c.name, steps, note, c.warmup)
		}
		cfg.Training.MaxSteps = 8
		if err := cfg.Validate(); (err != nil) != c.chosen {
			t.Errorf("%s, max_steps 8: Validate: %v", c.name, err)
		}
	}
}

// TestInitFileShortRun: the file ftune init writes holds every default;
// unchanged, with the shortcuts a smoke run uses, none of the checks of
// settings the run would ignore may fire.
func TestInitFileShortRun(t *testing.T) {
	var init bytes.Buffer
	if err := WriteInit(&init); err != nil {
		t.Fatal(err)
	}
	for _, sets := range [][]string{nil, {"training.max_steps=5"}, {"training.max_steps=1"}, {"training.optimizer.name=sgd"}, {"training.max_steps=0"}} {
		cfg, err := Parse(init.Bytes(), "run.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(cfg, sets); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("init file with %v: %v", sets, err)
		}
	}
}

// TestNamesMatchTheEngine: the names config accepts are the ones data/chat
// and data/format implement (config mirrors them so as not to load the
// engine; this test is where the two meet).
func TestNamesMatchTheEngine(t *testing.T) {
	got := slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(templates), func(s string) bool { return s == "auto" || s == "none" })))
	if want := chat.BuiltinNames(); !slices.Equal(got, want) {
		t.Errorf("data.template accepts %v, data/chat has the built-ins %v", got, want)
	}
	kinds := []format.Kind{format.KindJSONL, format.KindJSON, format.KindCSV, format.KindTSV, format.KindText, format.KindParquet}
	for _, k := range kinds {
		if !slices.Contains(formats, string(k)) {
			t.Errorf("data.format does not accept %q, which data/format reads", k)
		}
	}
	if len(formats) != len(kinds)+1 {
		t.Errorf("data.format accepts %v, data/format reads %v (and auto)", formats, kinds)
	}
}

// TestDefaultWarmupIsATenthOfAShortRun: the default 10 warmup steps are
// cut to a tenth of a run of fewer than 100 steps (a run of 10 steps was
// all warmup, its learning rate never reaching the value set); from 100
// steps on they stand. A warmup the user sets is theirs.
func TestDefaultWarmupIsATenthOfAShortRun(t *testing.T) {
	for _, c := range []struct{ steps, want int }{{9, 0}, {10, 1}, {20, 2}, {99, 9}, {100, 10}, {240, 10}} {
		cfg := Default()
		cfg.Training.MaxSteps = c.steps
		got, note := cfg.Warmup()
		if got != c.want || (note == "") != (c.steps >= 100) {
			t.Errorf("max_steps %d: warmup %d, note %q; want %d and a note below 100 steps", c.steps, got, note, c.want)
		}
	}
	cfg := Default()
	if err := ApplyFlag(cfg, "--set", "training.schedule.warmup_steps", "8"); err != nil {
		t.Fatal(err)
	}
	cfg.Training.MaxSteps = 10
	if got, note := cfg.Warmup(); got != 8 || note != "" {
		t.Errorf("a warmup of 8 set for 10 steps: %d, note %q; want 8 as set", got, note)
	}
}

// TestPlainTemplateRules: data.template none is accepted (it is no chat
// template, so not among data/chat's built-ins), and mask_history, which
// masks a conversation's earlier answers, is refused beside it: without
// a template no conversation is read.
func TestPlainTemplateRules(t *testing.T) {
	c := Default()
	if err := Apply(c, []string{"data.template=none"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("data.template none: %v", err)
	}
	if err := Apply(c, []string{"data.mask_history=true"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "data.mask_history") || !strings.Contains(err.Error(), "data.template none reads no conversations") {
		t.Errorf("mask_history with template none: %v", err)
	}
}
