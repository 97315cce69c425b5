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

func TestScheduleByName(t *testing.T) {
	s, err := ScheduleByName("cosine", 10, 110)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.LR(60); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("cosine LR(60) = %g, want 0.5", got)
	}
	for _, name := range []string{"constant", "constant_with_warmup", "linear", "LINEAR"} {
		if _, err := ScheduleByName(name, 1, 2); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ScheduleByName("polynomial", 1, 2); err == nil {
		t.Error("unknown schedule accepted")
	}
	if _, err := ScheduleByName("linear", -1, 2); err == nil {
		t.Error("negative warmup accepted")
	}
}
