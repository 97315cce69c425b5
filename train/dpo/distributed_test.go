package dpo

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/commtest"
)

// TestStatsTravelWhole: what workers exchange of Stats is every field.
func TestStatsTravelWhole(t *testing.T) {
	if n := reflect.TypeOf(Stats{}).NumField(); n != statsFloats {
		t.Fatalf("Stats has %d fields and put writes %d: a field added to Stats must travel between workers too", n, statsFloats)
	}
	s := Stats{Pairs: 1, Examples: 2, Chosen: 3, Rejected: 4, Loss: 5.5, RewardChosen: 6.5, RewardRejected: -7.5, Correct: 8,
		LogPChosen: -9.25, LogPRejected: -10.25, KL: 11.5, KLBatches: 12}
	buf := make([]float64, statsFloats)
	s.put(buf)
	if got := statsFrom(buf); got != s {
		t.Errorf("Stats %+v came back as %+v", s, got)
	}
}

// TestEvaluateSharedBetweenWorkers: validation on two and three workers
// (every batch, and 5 of the 13) gives every worker one process's figures
// bit for bit, each worker evaluating its share of the batches. (Summing
// each worker's batches, then all-reducing those sums, fails it: a
// different order of float64 additions.)
func TestEvaluateSharedBetweenWorkers(t *testing.T) {
	build := func(t *testing.T) (*Objective, *Loader, *int) {
		m, a, ids := randomAdapter(t, tensor.F32, 0.05)
		var pairs []Pair
		for i := range 13 {
			pairs = append(pairs, Pair{Prompt: ids(2 + i%3), Chosen: ids(1 + i%4), Rejected: ids(2 + i%2)})
		}
		l, err := NewLoader(pairs, 1, false, 0, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		batches := 0
		off := AdapterOff(m, a)
		ref := func(f func() error) error { batches++; return off(f) } // once a batch
		return &Objective{Model: m, Spec: Spec{Beta: 0.3}, Reference: ref}, l, &batches
	}
	for _, max := range []int{0, 5} {
		obj, l, _ := build(t)
		want, err := obj.Evaluate(context.Background(), l, max)
		if err != nil {
			t.Fatal(err)
		}
		if want.Pairs != map[int]int{0: 13, 5: 5}[max] {
			t.Fatalf("max %d: one process evaluated %d pairs", max, want.Pairs)
		}
		for _, n := range []int{2, 3} {
			got := make([]Stats, n)
			counts := make([]int, n)
			objs := make([]*Objective, n)
			loaders := make([]*Loader, n)
			calls := make([]*int, n)
			for r := range n {
				objs[r], loaders[r], calls[r] = build(t)
			}
			errs := commtest.Run(n, func(c dist.Comm) error {
				r := c.Rank()
				objs[r].Comm = c
				var err error
				got[r], err = objs[r].Evaluate(context.Background(), loaders[r], max)
				counts[r] = *calls[r]
				return err
			})
			total := 0
			for r := range n {
				if errs[r] != nil {
					t.Fatalf("max %d, %d workers, rank %d: %v", max, n, r, errs[r])
				}
				if got[r] != want {
					t.Errorf("max %d, %d workers, rank %d: %+v, one process %+v", max, n, r, got[r], want)
				}
				total += counts[r]
			}
			if batches := map[int]int{0: 13, 5: 5}[max]; total != batches || counts[0] != (batches+n-1)/n {
				t.Errorf("max %d, %d workers: batches evaluated by rank %v, want %d in all, shared", max, n, counts, batches)
			}
		}
	}
}

// TestObjectiveRefusesSplitRows: workers that would split a micro-batch's
// rows (grad_accum not a multiple of them) are refused with the fix;
// whole micro-batches are not.
func TestObjectiveRefusesSplitRows(t *testing.T) {
	obj := &Objective{}
	tr := &train.Trainer{Comm: commtest.Local(2)[0], Cfg: train.Config{GradAccum: 3}}
	if err := obj.OnTrainStart(tr); err == nil || !strings.Contains(err.Error(), "make grad_accum a multiple of 2") {
		t.Errorf("grad_accum 3 on 2 workers: %v, want a refusal with the fix", err)
	}
	tr.Cfg.GradAccum = 4
	if err := obj.OnTrainStart(tr); err != nil {
		t.Errorf("grad_accum 4 on 2 workers: %v", err)
	}
}

// TestSkippedStepLeavesNoRewards: a step the trainer's guard skips (its
// forwards ran, its OnStepEnd did not) adds nothing to the next step's
// figures.
func TestSkippedStepLeavesNoRewards(t *testing.T) {
	_, _, obj, b := setup(t)
	if _, err := obj.Forward(autograd.NewTape(), b, nn.ForwardOptions{}); err != nil {
		t.Fatal(err)
	}
	tr := &train.Trainer{}
	if err := obj.OnStepStart(tr); err != nil {
		t.Fatal(err)
	}
	m := train.Metrics{}
	if err := obj.OnStepEnd(tr, m); err != nil || len(m) != 0 {
		t.Errorf("after a skipped step, a step without forwards logs %v (%v), want nothing", m, err)
	}
}
