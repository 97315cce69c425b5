package optim

import (
	"math"
	"testing"
)

// TestSchedules checks transformers' lambdas at hand-computed points:
// warmup 10, total 110 (so 100 decay steps).
func TestSchedules(t *testing.T) {
	cos45 := 0.5 * (1 + math.Sqrt2/2) // cosine at progress 1/4: 0.5·(1+cos(π/4))
	cases := []struct {
		name  string
		s     Schedule
		steps []int
		want  []float64
	}{
		{"constant", Constant(), []int{0, 5, 1000}, []float64{1, 1, 1}},
		{"constant_with_warmup", ConstantWithWarmup(4), []int{0, 1, 3, 4, 100}, []float64{0, 0.25, 0.75, 1, 1}},
		{"linear", LinearWithWarmup(10, 110), []int{0, 5, 10, 35, 60, 109, 110, 200}, []float64{0, 0.5, 1, 0.75, 0.5, 0.01, 0, 0}},
		{"cosine", CosineWithWarmup(10, 110, 0.5), []int{0, 5, 10, 35, 60, 85, 110, 150}, []float64{0, 0.5, 1, cos45, 0.5, 1 - cos45, 0, 0.5 * (1 + math.Cos(math.Pi*1.4))}},
		{"cosine 1 cycle", CosineWithWarmup(0, 100, 1), []int{0, 25, 50, 75, 100}, []float64{1, 0.5, 0, 0.5, 1}},
		{"linear no warmup", LinearWithWarmup(0, 4), []int{0, 1, 2, 4}, []float64{1, 0.75, 0.5, 0}},
	}
	for _, c := range cases {
		for i, step := range c.steps {
			if got := c.s.LR(step); math.Abs(got-c.want[i]) > 1e-12 {
				t.Errorf("%s LR(%d) = %.15g, want %.15g", c.name, step, got, c.want[i])
			}
		}
	}
}

func TestScheduleSpecByName(t *testing.T) {
	s, err := ScheduleSpec{Name: "cosine", WarmupSteps: 10, TotalSteps: 110}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.LR(60); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("cosine LR(60) = %g, want 0.5", got)
	}
	for _, name := range []string{"constant", "constant_with_warmup", "linear", "LINEAR"} {
		if _, err := (ScheduleSpec{Name: name, WarmupSteps: 1, TotalSteps: 2}).Build(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := (ScheduleSpec{Name: "inverse_sqrt", WarmupSteps: 1, TotalSteps: 2}).Build(); err == nil {
		t.Error("unknown schedule accepted")
	}
	if _, err := (ScheduleSpec{Name: "linear", WarmupSteps: -1, TotalSteps: 2}).Build(); err == nil {
		t.Error("negative warmup accepted")
	}
}

// TestNewSchedules checks the schedules that take settings against
// transformers' lambdas, computed by hand at warmup 10, total 110 (100
// steps after the warmup; the last training step is 109). Each want is
// the lambda's formula at that step.
func TestNewSchedules(t *testing.T) {
	half := func(p float64) float64 { return 0.5 * (1 + math.Cos(math.Pi*p)) } // half cosine at progress p
	lift := func(f, floor float64) float64 { return f*(1-floor) + floor }
	poly := func(lr, end, power, remaining float64) float64 {
		return ((lr-end)*math.Pow(remaining, power) + end) / lr
	}
	cases := []struct {
		name  string
		s     Schedule
		steps []int
		want  []float64
	}{
		// cosine_with_min_lr, min_lr_rate 0.1: warmup k/10; then
		// 0.5·(1+cos(π·p))·0.9 + 0.1 with p = (k-10)/100.
		{"cosine_with_min_lr", CosineWithMinLR(10, 110, 0.5, 0.1),
			[]int{0, 5, 9, 10, 60, 109, 110},
			[]float64{0, 0.5, 0.9, 1, 0.55, lift(half(0.99), 0.1), 0.1}}, // 110: the floor, lr·0.1
		// cosine_with_restarts, 4 cycles of 25 steps: 0.5·(1+cos(π·((4p) mod 1))),
		// 1 at each restart (35, 60, 85), 0 from p = 1.
		{"cosine_with_restarts", CosineWithHardRestarts(10, 110, 4),
			[]int{0, 9, 10, 20, 34, 35, 59, 60, 85, 109, 110, 150},
			[]float64{0, 0.9, 1, half(0.4), half(0.96), 1, half(0.96), 1, 1, half(0.96), 0, 0}},
		// polynomial, lr 1e-3, lr_end 1e-7, power 1:
		// ((lr-lr_end)·(1-p)^power + lr_end)/lr, lr_end/lr from step 110.
		{"polynomial", PolynomialDecay(10, 110, 1e-3, 1e-7, 1),
			[]int{0, 5, 10, 60, 109, 110, 200},
			[]float64{0, 0.5, 1, 0.50005, 0.010099, 1e-4, 1e-4}},
		{"polynomial power 2", PolynomialDecay(10, 110, 1e-3, 1e-7, 2),
			[]int{10, 60, 109, 110},
			[]float64{1, 0.250075, poly(1e-3, 1e-7, 2, 0.01), 1e-4}},
		// warmup_stable_decay, 80 stable and 20 decay steps, min_lr_ratio
		// 0.1: warmup lifts k/10 to k/10·0.9+0.1 (it starts at the floor);
		// 1 on steps 10-89; decay p = (k-90)/20 lifted; 0.1 from step 110.
		{"wsd cosine", WarmupStableDecay(10, 80, 20, DecayCosine, 0.1),
			[]int{0, 5, 10, 89, 90, 100, 109, 110, 500},
			[]float64{0.1, 0.55, 1, 1, 1, 0.55, lift(half(0.95), 0.1), 0.1, 0.1}},
		{"wsd linear", WarmupStableDecay(10, 80, 20, DecayLinear, 0.1),
			[]int{90, 100, 109, 110},
			[]float64{1, 0.55, 0.145, 0.1}},
		{"wsd 1-sqrt", WarmupStableDecay(10, 80, 20, Decay1Sqrt, 0),
			[]int{0, 5, 90, 95, 100, 110},
			[]float64{0, 0.5, 1, 0.5, 1 - math.Sqrt(0.5), 0}},
	}
	for _, c := range cases {
		for i, step := range c.steps {
			if got := c.s.LR(step); math.Abs(got-c.want[i]) > 1e-12 {
				t.Errorf("%s LR(%d) = %.15g, want %.15g", c.name, step, got, c.want[i])
			}
		}
	}
	// One cycle of restarts is the cosine; min_lr_rate 0 is the cosine.
	cos := CosineWithWarmup(10, 110, 0.5)
	for _, s := range []Schedule{CosineWithHardRestarts(10, 110, 1), CosineWithMinLR(10, 110, 0.5, 0)} {
		for k := range 110 {
			if got, want := s.LR(k), cos.LR(k); math.Abs(got-want) > 1e-12 {
				t.Fatalf("LR(%d) = %g, cosine's %g", k, got, want)
			}
		}
	}
}

func TestScheduleSpec(t *testing.T) {
	ok := []ScheduleSpec{
		{Name: "cosine_with_min_lr", WarmupSteps: 1, TotalSteps: 10, MinLRRate: 0.1},
		{Name: "cosine_with_restarts", TotalSteps: 10, NumCycles: 2},
		{Name: "polynomial", TotalSteps: 10, LR: 1e-3, LREnd: 1e-7, Power: 1},
		{Name: "warmup_stable_decay", WarmupSteps: 2, TotalSteps: 10, DecaySteps: 8, DecayType: "1-sqrt"},
	}
	for _, s := range ok {
		if _, err := s.Build(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []ScheduleSpec{
		{Name: "cosine_with_min_lr", TotalSteps: 10, MinLRRate: 1},
		{Name: "cosine_with_restarts", TotalSteps: 10},
		{Name: "polynomial", TotalSteps: 10, LR: 1e-7, LREnd: 1e-7, Power: 1}, // lr_end must be below lr, as transformers says
		{Name: "polynomial", TotalSteps: 10, LR: 1e-3, Power: 0},
		{Name: "warmup_stable_decay", WarmupSteps: 3, TotalSteps: 10, DecaySteps: 8, DecayType: "cosine"},
		{Name: "warmup_stable_decay", TotalSteps: 10, DecaySteps: 1, DecayType: "exp"},
		{Name: "inverse_sqrt", TotalSteps: 10},
	}
	for _, s := range bad {
		if _, err := s.Build(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	// The stable phase is what warmup and decay leave: 10-2-8 = 0 steps.
	s, _ := ScheduleSpec{Name: "warmup_stable_decay", WarmupSteps: 2, TotalSteps: 10, DecaySteps: 8, DecayType: "linear"}.Build()
	if got := s.LR(2); got != 1 {
		t.Errorf("wsd LR(2) = %g, want 1 (the decay's first step)", got)
	}
	if got := s.LR(6); got != 0.5 {
		t.Errorf("wsd LR(6) = %g, want 0.5", got)
	}
}

// TestStepsOfRatio: transformers' ceil(total × ratio), with Python's
// float product: 100 × 0.07 is 7.000000000000001, so 8 steps.
func TestStepsOfRatio(t *testing.T) {
	for _, c := range []struct {
		ratio       float64
		total, want int
	}{{0, 100, 0}, {0.1, 100, 10}, {0.1, 240, 24}, {0.03, 240, 8}, {0.07, 100, 8}, {0.57, 100, 57}, {0.5, 1, 1}, {0.99, 3, 3}} {
		if got := StepsOfRatio(c.ratio, c.total); got != c.want {
			t.Errorf("StepsOfRatio(%v, %d) = %d, want %d", c.ratio, c.total, got, c.want)
		}
	}
}
