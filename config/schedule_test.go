package config

import (
	"errors"
	"strings"
	"testing"
)

// validateCase parses yaml as run.yaml (""= defaults), applies sets and
// validates: want nil is valid, else each want appears in the error, in
// order.
func validateCase(t *testing.T, yaml string, sets, want []string) {
	t.Helper()
	cfg := Default()
	if yaml != "" {
		var err error
		if cfg, err = Parse([]byte(yaml), "run.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if err := Apply(cfg, sets); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate()
	if want == nil {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	if err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want an ErrInvalid with %q", err, want)
	}
	msg, at := err.Error(), 0
	for _, w := range want {
		i := strings.Index(msg[at:], w)
		if i < 0 {
			t.Fatalf("error\n%s\nlacks (in order)\n%s", msg, w)
		}
		at += i + len(w)
	}
}

// TestValidateSchedule: the schedule keys' ranges and combinations, each
// refusal naming the key and the line that set it.
func TestValidateSchedule(t *testing.T) {
	wsd := "training.schedule.name=warmup_stable_decay"
	for _, tc := range []struct {
		name string
		yaml string
		sets []string
		want []string
	}{
		{name: "warmup_ratio", sets: []string{"training.schedule.warmup_ratio=0.05"}},
		{name: "warmup_ratio with the default warmup_steps in the file ftune init wrote", yaml: initTop + "training:\n  schedule:\n    warmup_steps: 10\n    warmup_ratio: 0.05\n"},
		{name: "warmup_ratio with warmup_steps 10 written by hand", yaml: "training:\n  schedule:\n    warmup_steps: 10\n    warmup_ratio: 0.05\n",
			want: []string{"run.yaml:4: training.schedule.warmup_ratio: 0.05 and warmup_steps 10 both set the warmup"}},
		{name: "warmup_ratio one", sets: []string{"training.schedule.warmup_ratio=1"},
			want: []string{"--set training.schedule.warmup_ratio=1: training.schedule.warmup_ratio: must be in [0, 1)"}},
		{name: "warmup_ratio negative", yaml: "training:\n  schedule:\n    warmup_ratio: -0.1\n",
			want: []string{"run.yaml:3: training.schedule.warmup_ratio: must be in [0, 1)"}},
		{name: "warmup_ratio beside warmup_steps", yaml: "training:\n  schedule:\n    warmup_steps: 20\n    warmup_ratio: 0.1\n",
			want: []string{"run.yaml:4: training.schedule.warmup_ratio: 0.1 and warmup_steps 20 both set the warmup: set one of them"}},
		{name: "warmup_ratio with constant", sets: []string{"training.schedule.name=constant", "training.schedule.warmup_ratio=0.1"},
			want: []string{"--set training.schedule.warmup_ratio=0.1: training.schedule.warmup_ratio: 0.1 sets a warmup, and schedule constant has none"}},
		{name: "warmup_steps with constant", yaml: "training:\n  schedule:\n    name: constant\n    warmup_steps: 5\n",
			want: []string{"run.yaml:4: training.schedule.warmup_steps: 5 sets a warmup, and schedule constant has none"}},
		{name: "constant with warmup_steps 0", sets: []string{"training.schedule.name=constant", "training.schedule.warmup_steps=0"}},
		{name: "constant with the default warmup_steps", sets: []string{"training.schedule.name=constant"}},

		{name: "cosine_with_min_lr", sets: []string{"training.schedule.name=cosine_with_min_lr", "training.schedule.min_lr_rate=0.1"}},
		{name: "cosine_with_min_lr needs min_lr_rate", yaml: "training:\n  schedule:\n    name: cosine_with_min_lr\n",
			want: []string{"run.yaml:3: training.schedule.name: cosine_with_min_lr needs min_lr_rate > 0"}},
		{name: "min_lr_rate one", sets: []string{"training.schedule.name=cosine_with_min_lr", "training.schedule.min_lr_rate=1"},
			want: []string{"training.schedule.min_lr_rate: must be a fraction of optimizer.lr in [0, 1), got 1"}},
		{name: "min_lr_rate with cosine", yaml: "training:\n  schedule:\n    min_lr_rate: 0.1\n",
			want: []string{"run.yaml:3: training.schedule.min_lr_rate: 0.1 is read by schedule cosine_with_min_lr and warmup_stable_decay only, and training.schedule.name is cosine"}},
		{name: "min_lr_rate with wsd", sets: []string{wsd, "training.schedule.min_lr_rate=0.1"}},

		{name: "cosine_with_restarts", sets: []string{"training.schedule.name=cosine_with_restarts", "training.schedule.num_cycles=3"}},
		{name: "num_cycles zero", sets: []string{"training.schedule.name=cosine_with_restarts", "training.schedule.num_cycles=0"},
			want: []string{"--set training.schedule.num_cycles=0: training.schedule.num_cycles: must be >= 1, got 0"}},
		{name: "num_cycles with linear", sets: []string{"training.schedule.name=linear", "training.schedule.num_cycles=3"},
			want: []string{"training.schedule.num_cycles: 3 is read by schedule cosine_with_restarts only, and training.schedule.name is linear"}},

		{name: "polynomial", sets: []string{"training.schedule.name=polynomial", "training.schedule.power=2", "training.schedule.lr_end=1e-5"}},
		{name: "power zero", sets: []string{"training.schedule.name=polynomial", "training.schedule.power=0"},
			want: []string{"training.schedule.power: must be > 0, got 0"}},
		{name: "lr_end above lr", yaml: "training:\n  optimizer:\n    lr: 1e-4\n  schedule:\n    name: polynomial\n    lr_end: 1e-3\n",
			want: []string{"run.yaml:6: training.schedule.lr_end: 0.001 must be below training.optimizer.lr (0.0001)"}},
		{name: "power with cosine", sets: []string{"training.schedule.power=2"},
			want: []string{"training.schedule.power: 2 is read by schedule polynomial only"}},
		{name: "lr_end with cosine", sets: []string{"training.schedule.lr_end=0"},
			want: []string{"training.schedule.lr_end: 0 is read by schedule polynomial only"}},

		{name: "wsd", sets: []string{wsd, "training.schedule.decay_ratio=0.2", "training.schedule.decay_type=1-sqrt"}},
		{name: "wsd decay over the whole run after the warmup", sets: []string{wsd, "training.max_steps=100", "training.schedule.decay_ratio=0.9"}},
		{name: "wsd warmup and decay exceed the run", sets: []string{wsd, "training.max_steps=100", "training.schedule.decay_ratio=0.95"},
			want: []string{"--set training.schedule.decay_ratio=0.95: training.schedule.decay_ratio: 0.95 of training.max_steps 100 is 95 decay steps, which with 10 warmup steps exceed the run"}},
		{name: "decay_ratio zero", sets: []string{wsd, "training.schedule.decay_ratio=0"},
			want: []string{"training.schedule.decay_ratio: must be a fraction of the run's steps in (0, 1]"}},
		{name: "decay_type unknown", sets: []string{wsd, "training.schedule.decay_type=exp"},
			want: []string{`training.schedule.decay_type: "exp" is not one of cosine, linear, 1-sqrt`}},
		{name: "decay_type with cosine", yaml: "training:\n  schedule:\n    decay_type: linear\n",
			want: []string{"run.yaml:3: training.schedule.decay_type: linear is read by schedule warmup_stable_decay only"}},
		{name: "schedule unknown", sets: []string{"training.schedule.name=inverse_sqrt"},
			want: []string{`training.schedule.name: "inverse_sqrt" is not one of constant, constant_with_warmup, linear, cosine, cosine_with_min_lr, cosine_with_restarts, polynomial, warmup_stable_decay`}},

		{name: "loraplus", sets: []string{"training.lora.loraplus_lr_ratio=16"}},
		{name: "loraplus below one", yaml: "training:\n  lora:\n    loraplus_lr_ratio: 0.5\n",
			want: []string{"run.yaml:3: training.lora.loraplus_lr_ratio: must be 0 (off) or >= 1"}},
		{name: "loraplus with per-subject adapters, DoRA and sgd", sets: []string{"training.lora.loraplus_lr_ratio=4", "training.adapters=per-subject", "training.lora.dora=true", "training.optimizer.name=sgd"}},
	} {
		t.Run(tc.name, func(t *testing.T) { validateCase(t, tc.yaml, tc.sets, tc.want) })
	}
}

// TestWarmupRatio: with warmup_ratio the ratio decides the warmup,
// transformers' ceil(ratio × max_steps), with no note even where the
// default warmup_steps would be scaled to a short run; under max_epochs
// the run decides (0 here).
func TestWarmupRatio(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want int
	}{
		{[]string{"training.schedule.warmup_ratio=0.1"}, 24},                           // 240 steps
		{[]string{"training.schedule.warmup_ratio=0.07", "training.max_steps=100"}, 8}, // 7.000000000000001
		{[]string{"training.schedule.warmup_ratio=0.3", "training.max_steps=20"}, 6},   // the default 10 would be cut to 2
		{[]string{"training.schedule.warmup_ratio=0.1", "training.max_steps=0"}, 0},    // max_epochs decides
		{[]string{"training.schedule.warmup_ratio=0", "training.max_steps=20"}, 2},     // off: the default, scaled
		{[]string{"training.schedule.warmup_steps=7", "training.max_steps=20"}, 7},     // the user's
	} {
		cfg := Default()
		if err := Apply(cfg, c.sets); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		w, note := cfg.Warmup()
		if w != c.want || (note != "") != (c.want == 2) {
			t.Errorf("%v: warmup %d (note %q), want %d", c.sets, w, note, c.want)
		}
	}
}
