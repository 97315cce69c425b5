package config

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	a := Default()
	if d := Diff(a, a.Clone()); len(d) != 0 {
		t.Fatalf("a config differs from its clone: %v", d)
	}
	b := a.Clone()
	if err := Apply(b, []string{"training.max_steps=400", "training.optimizer.betas=[0.8, 0.9]", "data.mixing=weights",
		"data.weights={b: 2, a: 1}", "training.max_time=30m", "data.subjects=[]"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(a, b) {
		got = append(got, c.String())
	}
	want := []string{"data.mixing: proportional → weights", "data.weights: {} → {a: 1, b: 2}",
		"training.optimizer.betas: [0.9, 0.999] → [0.8, 0.9]", "training.max_steps: 240 → 400", "training.max_time: 0s → 30m0s"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
