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

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/config"
)

// leafCase says how to give one config leaf a valid non-default value:
// value is its YAML ("" = derived from the default by type), setup are
// --set arguments that give the leaf a context in which it matters
// (applied to both sides of the comparison).
type leafCase struct {
	value string
	setup []string
}

// leafCases are the leaves whose derived value would be invalid or
// meaningless (strings, values with ranges, leaves that act only with
// another setting).
func leafCases(t *testing.T) map[string]leafCase {
	model := t.TempDir()
	src, err := assets.Model(assets.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{"data.files=[my.jsonl]"}
	earlyStop := []string{"training.early_stopping.enabled=true"}
	return map[string]leafCase{
		"model.path":                        {value: model},
		"model.dtype":                       {value: "bf16"},
		"data.root":                         {value: "/somewhere/subjects"},
		"data.files":                        {value: "[my.jsonl]"},
		"data.token_cache":                  {value: "/somewhere/tokens"},
		"data.format":                       {value: "csv", setup: files},
		"data.text_unit":                    {value: "paragraph"},
		"data.long_text":                    {value: "truncate"},
		"data.shape":                        {value: "unpaired_preference", setup: files},
		"data.columns":                      {value: "{instruction: question}", setup: append(slices.Clone(files), "data.shape=alpaca")},
		"data.template":                     {value: "chatml"},
		"data.enable_thinking":              {value: "false"},
		"data.subjects":                     {value: "[chemistry]"},
		"data.mixing":                       {value: "uniform"},
		"data.weights":                      {value: "{chemistry: 2, geography: 1}", setup: []string{"data.mixing=weights", "data.weights={chemistry: 1}"}},
		"data.val_split":                    {value: "0.2"},
		"training.adapters":                 {value: "per-subject"},
		"training.objective":                {value: "dpo"},
		"training.lora.targets":             {value: "[q_proj, v_proj]"},
		"training.lora.modules_to_save":     {value: "[embed_tokens, lm_head]"},
		"training.optimizer.name":           {value: "sgd"},
		"training.optimizer.betas":          {value: "[0.8, 0.99]"},
		"training.schedule.name":            {value: "linear"},
		"training.schedule.warmup_ratio":    {value: "0.05"},
		"training.schedule.decay_type":      {value: "1-sqrt", setup: []string{"training.schedule.name=warmup_stable_decay"}},
		"training.lora.loraplus_lr_ratio":   {value: "16"},
		"training.spike_factor":             {value: "3"},
		"training.max_time":                 {value: "30m"},
		"training.eval.generation.samples":  {value: "1"},
		"training.checkpointing.monitor":    {value: "val/perplexity"},
		"training.checkpointing.mode":       {value: "max"},
		"training.early_stopping.monitor":   {value: "val/token_accuracy", setup: earlyStop},
		"training.early_stopping.mode":      {value: "max", setup: earlyStop},
		"training.early_stopping.patience":  {value: "7", setup: earlyStop},
		"training.early_stopping.min_delta": {setup: earlyStop},
		// Settings the run uses only with another one (Validate refuses
		// them changed without it).
		"training.max_epochs":                     {setup: []string{"training.max_steps=0"}},
		"training.optimizer.momentum":             {setup: []string{"training.optimizer.name=sgd"}},
		"training.schedule.min_lr_rate":           {setup: []string{"training.schedule.name=warmup_stable_decay"}},
		"training.schedule.num_cycles":            {setup: []string{"training.schedule.name=cosine_with_restarts"}},
		"training.schedule.power":                 {setup: []string{"training.schedule.name=polynomial"}},
		"training.schedule.lr_end":                {setup: []string{"training.schedule.name=polynomial"}},
		"training.schedule.decay_ratio":           {setup: []string{"training.schedule.name=warmup_stable_decay"}},
		"training.dpo.beta":                       {setup: []string{"training.objective=dpo"}},
		"training.lora.init_from":                 {value: "/somewhere/adapter"},
		"training.dpo.loss_type":                  {value: "[ipo]", setup: []string{"training.objective=dpo"}},
		"training.dpo.loss_weights":               {value: "[0.5]", setup: []string{"training.objective=dpo"}},
		"training.dpo.label_smoothing":            {value: "0.25", setup: []string{"training.objective=dpo", "training.dpo.loss_type=robust"}},
		"training.dpo.simpo_gamma":                {value: "1.5", setup: []string{"training.objective=dpo", "training.dpo.loss_type=simpo"}},
		"training.kto.beta":                       {setup: []string{"training.objective=kto"}},
		"training.kto.desirable_weight":           {setup: []string{"training.objective=kto"}},
		"training.kto.undesirable_weight":         {setup: []string{"training.objective=kto"}},
		"training.kto.loss_type":                  {value: "apo_zero_unpaired", setup: []string{"training.objective=kto"}},
		"training.tracking.output_dir":            {value: "/somewhere/runs"},
		"training.tracking.run_name":              {value: "leaf"},
		"training.device":                         {value: "cpu"},
		"training.precision":                      {value: "f32"},
		"training.gemm_provider":                  {value: "ftune"},
		"training.attention_kernel":               {value: "simt"},
		"training.eval.generation.questions":      {value: "5", setup: []string{"training.eval.generation.samples=0"}},
		"training.eval.generation.max_new_tokens": {value: "8"},
	}
}

// refusedLeaves have one implemented value (the default): every other one
// is refused by Validate, so none can be silently dropped. The test checks
// the refusal.
var refusedLeaves = map[string]string{
	"training.quantization.type":         "int8",
	"training.quantization.block_size":   "128",
	"training.quantization.double_quant": "false",
}

// unmappedLeaves do not change the options, each with the reason. Keep it
// (almost) empty: a leaf here is a setting the run does not see.
var unmappedLeaves = map[string]string{}

// TestEveryConfigLeafReachesTheRun sets each leaf of config.RunConfig to a
// valid non-default value and checks that FromConfig's options change. A
// leaf added to the config without a mapping fails here.
func TestEveryConfigLeafReachesTheRun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cases := leafCases(t)
	leaves := configLeaves(reflect.TypeOf(config.RunConfig{}), "")
	if len(leaves) < 60 {
		t.Fatalf("found %d leaves; the walk is broken", len(leaves))
	}
	def := config.Default()
	// The options of each setup without the leaf, made once: most leaves
	// share the plain defaults, and the subtests only compare with them.
	bases := map[string]Options{}
	for _, leaf := range leaves {
		t.Run(leaf, func(t *testing.T) {
			if bad, ok := refusedLeaves[leaf]; ok {
				cfg := config.Default()
				if err := config.Apply(cfg, []string{leaf + "=" + bad}); err != nil {
					t.Fatal(err)
				}
				if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), leaf) {
					t.Fatalf("%s=%s: want refused by Validate naming the key, got %v", leaf, bad, err)
				}
				return
			}
			c, ok := cases[leaf]
			if c.value == "" && ok && c.setup == nil {
				t.Fatalf("leafCases lists %s with neither a value nor a setup", leaf)
			}
			if c.value == "" {
				v, err := derivedValue(def, leaf)
				if err != nil {
					t.Fatalf("%v: add %s to leafCases with a valid non-default value", err, leaf)
				}
				c.value = v
			}
			key := strings.Join(c.setup, "\x00")
			base, ok := bases[key]
			if !ok {
				base = options(t, c.setup)
				bases[key] = base
			}
			got := options(t, append(append([]string(nil), c.setup...), leaf+"="+c.value))
			why, listed := unmappedLeaves[leaf]
			if same := reflect.DeepEqual(base, got); same && !listed {
				t.Fatalf("%s=%s does not change recipe.Options: the setting is dropped (map it in FromConfig)", leaf, c.value)
			} else if !same && listed {
				t.Fatalf("%s is listed as unmapped (%s) but changes the options: remove it from the list", leaf, why)
			}
		})
	}
}

// options validates the defaults with sets applied and maps them; Config
// (the YAML, which holds every value) and Log are left out of the
// comparison.
func options(t *testing.T, sets []string) Options {
	t.Helper()
	cfg := config.Default()
	if err := config.Apply(cfg, sets); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%v: %v", sets, err)
	}
	o, err := FromConfig(cfg)
	if err != nil {
		t.Fatalf("%v: %v", sets, err)
	}
	if len(o.Config) == 0 {
		t.Fatal("FromConfig wrote no config.yaml")
	}
	o.Config, o.Log = nil, nil
	return o
}

var durationType = reflect.TypeOf(config.Duration(0))

// configLeaves lists the dotted key of every leaf (scalar, list, map).
func configLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, configLeaves(f.Type, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// derivedValue is a non-default value for a numeric or boolean leaf: the
// negation, the default + 1, or half the default (0.25 when it is 0).
func derivedValue(cfg *config.RunConfig, path string) (string, error) {
	v := reflect.ValueOf(cfg).Elem()
	for _, part := range strings.Split(path, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("%s: no field %s", path, part)
		}
	}
	switch v.Kind() {
	case reflect.Bool:
		return fmt.Sprint(!v.Bool()), nil
	case reflect.Int, reflect.Int64:
		return fmt.Sprint(v.Int() + 1), nil
	case reflect.Uint64:
		return fmt.Sprint(v.Uint() + 1), nil
	case reflect.Float64:
		if f := v.Float(); f > 0 {
			return fmt.Sprint(f / 2), nil
		}
		return "0.25", nil
	}
	return "", fmt.Errorf("%s is a %s: no value can be derived", path, v.Type())
}

// TestEarlyStoppingKeepsCheckpointMonitor: early stopping on one metric
// used to overwrite the checkpoints' monitor with its own.
func TestEarlyStoppingKeepsCheckpointMonitor(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := options(t, []string{"training.checkpointing.monitor=val/perplexity", "training.early_stopping.enabled=true",
		"training.early_stopping.monitor=val/token_accuracy", "training.early_stopping.mode=max"})
	if o.Monitor != "val/perplexity" || o.MonitorMode != "min" {
		t.Fatalf("checkpoint monitor %s/%s, want val/perplexity/min", o.Monitor, o.MonitorMode)
	}
	es := o.earlyStopping()
	if es == nil || es.Monitor != "val/token_accuracy" || es.Mode != "max" || es.Patience != 3 {
		t.Fatalf("early stopping %+v, want val/token_accuracy, max, patience 3", es)
	}
	if o := options(t, nil); o.earlyStopping() != nil {
		t.Fatal("early stopping on by default")
	}
}

// TestRetiredKeyNoticeReachesTheLog: a run file holding a retired key
// (training.step_arena, which ftune init wrote) runs, and the run's log
// says first that the key is ignored, naming where it was set.
func TestRetiredKeyNoticeReachesTheLog(t *testing.T) {
	cfg, err := config.Parse([]byte("training:\n  step_arena: true\n"), "old.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Notices) != 1 {
		t.Fatalf("notices %q, want the retired key's", o.Notices)
	}
	run := tinyOptions(t)
	run.Notices = o.Notices
	run.DataRoot = t.TempDir() // no subjects: the run stops after its first lines
	var log bytes.Buffer
	run.Log = &log
	if _, err := Run(context.Background(), run); err == nil {
		t.Fatal("a run without data trained")
	}
	if first, _, _ := strings.Cut(log.String(), "\n"); !strings.HasPrefix(first, "note: old.yaml:2: training.step_arena is retired and ignored: ") {
		t.Fatalf("first log line %q\n%s", first, log.String())
	}
}

// TestCPUPoolSwitchReachesTheOptions: FTUNE_CPU_POOL=0 reaches the run
// (recipe's NoCPUPool, then train.Config.HeapOnly); unset, the pool is on.
func TestCPUPoolSwitchReachesTheOptions(t *testing.T) {
	for env, off := range map[string]bool{"0": true, "": false, "1": false} {
		t.Setenv("FTUNE_CPU_POOL", env)
		o, err := FromConfig(config.Default())
		if err != nil {
			t.Fatal(err)
		}
		if o.NoCPUPool != off {
			t.Errorf("FTUNE_CPU_POOL=%q: NoCPUPool %v, want %v", env, o.NoCPUPool, off)
		}
	}
}

// TestShortRunWarmup: ftune init's file (every default written out) with
// --max-steps 5 runs like plain --max-steps 5: the default warmup scaled
// to the run, with a note saying so, and config.yaml recording what was
// used. The caller's config is left as given.
func TestShortRunWarmup(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	var init bytes.Buffer
	if err := config.WriteInit(&init); err != nil {
		t.Fatal(err)
	}
	fromInit, err := config.Parse(init.Bytes(), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*config.RunConfig{"default": config.Default(), "init file": fromInit} {
		if err := config.ApplyFlag(cfg, "--max-steps", "training.max_steps", "5"); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if o.WarmupSteps != 0 || len(o.Notices) != 1 || !strings.Contains(o.Notices[0], "the default 10 warmup steps are more than a tenth of training.max_steps (5): the run warms up for 0") {
			t.Fatalf("%s: warmup %d, notices %q", name, o.WarmupSteps, o.Notices)
		}
		if !strings.Contains(string(o.Config), "warmup_steps: 0") {
			t.Fatalf("%s: config.yaml does not record the warmup used:\n%s", name, o.Config)
		}
		if cfg.Training.Schedule.WarmupSteps != 10 || cfg.Training.Eval.Every != 80 || len(cfg.Notices()) != 0 {
			t.Fatalf("%s: FromConfig changed its argument: warmup %d, eval.every %d, notices %q", name,
				cfg.Training.Schedule.WarmupSteps, cfg.Training.Eval.Every, cfg.Notices())
		}
	}
	// A run ten times the warmup's length: no note.
	if o := options(t, []string{"training.max_steps=100"}); o.WarmupSteps != 10 || len(o.Notices) != 0 {
		t.Fatalf("warmup %d, notices %q", o.WarmupSteps, o.Notices)
	}
}

// TestEarlyStoppingThatCannotStopIsNoted: patience p needs p+1
// validations before the last step; fewer, and the run says early
// stopping cannot stop it.
func TestEarlyStoppingThatCannotStopIsNoted(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := options(t, []string{"training.early_stopping.enabled=true"}) // 240 steps, eval every 80, patience 3
	if len(o.Notices) != 1 || !strings.Contains(o.Notices[0], "patience 3 needs 4 validations before the last step to stop the run, and max_steps 240 with eval.every 80 runs 2") {
		t.Fatalf("notices %q", o.Notices)
	}
	if o := options(t, []string{"training.early_stopping.enabled=true", "training.eval.every=20"}); len(o.Notices) != 0 {
		t.Fatalf("notices %q", o.Notices)
	}
}

// TestValidateRefusesAHugeLoRAScale: a LoRA scale past lora.MaxScaling is
// refused by the run's own keys before anything is loaded (lora.Config
// would refuse it too, but once the base is in memory and in PEFT's
// names); rsLoRA's alpha/√r is what is bounded when it is on.
func TestValidateRefusesAHugeLoRAScale(t *testing.T) {
	o, err := FromConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	o.Alpha = 1e38
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "training.lora.alpha 1e+38") {
		t.Fatalf("alpha 1e38: %v, want a refusal naming training.lora.alpha", err)
	}
	o.R, o.Alpha, o.RSLoRA = 4, 1.5e4, true // alpha/√r = 7500: allowed; alpha/r would not be
	if err := o.Validate(); err != nil {
		t.Fatalf("rsLoRA alpha 1.5e4 at r 4 (scale 7500): %v", err)
	}
}

// TestSamplesAtMostQuestions: the default number of sample answers (2)
// shows at most the questions asked (one here), none without questions.
func TestSamplesAtMostQuestions(t *testing.T) {
	for _, q := range []int{0, 1, 5} {
		cfg := config.Default()
		cfg.Training.Eval.Generation.Questions = q
		o, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(cfg.Training.Eval.Generation.Samples, q); o.Samples != want {
			t.Errorf("%d questions: %d samples, want %d", q, o.Samples, want)
		}
	}
}
