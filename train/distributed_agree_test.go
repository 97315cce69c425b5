package train_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/commtest"
)

// TestDataParallelRefusesWorkersThatDiffer: workers whose configuration,
// data or base differ (DataParallel.Agree, as recipe fills it in), or
// whose trainer settings differ (steps, learning rate), all refuse to
// train before step 1 with one error naming the first rank that differs
// from rank 0 and what differs, the differing keys with both values. With
// three workers only rank 2 differing, the check still runs the same
// collectives on every worker (commtest fails a worker that calls another
// operation or length than the others), so no worker waits.
func TestDataParallelRefusesWorkersThatDiffer(t *testing.T) {
	agree := func(lr, data string) []train.Agreement {
		return []train.Agreement{
			{What: "the configurations", Fields: map[string]string{"training.optimizer.lr": lr, "training.seed": "42"}},
			{What: "the training data", Digest: data},
			{What: "the base models", Digest: "c1127a103007d515"},
		}
	}
	for _, tc := range []struct {
		name    string
		workers int
		differ  func(rank int, tr *train.Trainer)
		want    []string
	}{
		{"configuration", 2, func(rank int, tr *train.Trainer) {
			if rank == 1 {
				tr.DP.Agree = agree("0.02", "aaaa")
			}
		}, []string{"rank 1 differs from rank 0", "the configurations differ: rank 1's training.optimizer.lr 0.02, rank 0's 0.002"}},
		{"data", 2, func(rank int, tr *train.Trainer) {
			if rank == 1 {
				tr.DP.Agree = agree("0.002", "bbbbbbbbbbbbbbbbbbbb")
			}
		}, []string{"rank 1 differs from rank 0", "the training data differ: rank 1's bbbbbbbbbbbb…, rank 0's aaaa"}},
		{"max steps", 2, func(rank int, tr *train.Trainer) {
			if rank == 1 {
				tr.Cfg.MaxSteps = 5
			}
		}, []string{"rank 1 differs from rank 0", "the trainer settings differ: rank 1's max steps 5, rank 0's 3"}},
		{"rank 2 of 3, two things", 3, func(rank int, tr *train.Trainer) {
			if rank == 2 {
				tr.DP.Agree = agree("0.02", "bbbb")
			}
		}, []string{"rank 2 differs from rank 0", "the configurations differ: rank 2's training.optimizer.lr 0.02, rank 0's 0.002; the training data differ: rank 2's bbbb, rank 0's aaaa"}},
		{"ranks 1 and 2 of 3", 3, func(rank int, tr *train.Trainer) {
			if rank > 0 {
				tr.Cfg.LR *= 2
			}
		}, []string{"rank 1 differs from rank 0 before training (2 of 3 workers differ from rank 0; the first is shown)", "rank 1's lr "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trs, errs := fitWorkers(t, tc.workers, func(rank int) *train.Trainer {
				tr := dpRun(t, 3)
				tr.DP.Agree = agree("0.002", "aaaa")
				tc.differ(rank, tr)
				return tr
			}, background)
			t.Logf("rank 0: %v", errs[0])
			for r, err := range errs {
				for _, want := range tc.want {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("rank %d: %v; want an error saying %q", r, err, want)
					}
				}
				if !errors.Is(err, train.ErrWorkersDiffer) {
					t.Errorf("rank %d: %v is not train.ErrWorkersDiffer", r, err)
				}
				if len(trs[r].State.Losses) != 0 {
					t.Errorf("rank %d trained %d steps", r, len(trs[r].State.Losses))
				}
			}
		})
	}
}

// TestDataParallelAgreeingWorkersTrain: workers that agree in everything
// pass the check (CheckInSync before Fit, as recipe calls it, then Fit's
// own) and train.
func TestDataParallelAgreeingWorkersTrain(t *testing.T) {
	trs := make([]*train.Trainer, 2)
	for r := range trs {
		trs[r] = dpRun(t, 2)
		trs[r].DP.Agree = []train.Agreement{{What: "the training data", Digest: "aaaa"}}
	}
	errs := commtest.Run(2, func(c dist.Comm) error {
		tr := trs[c.Rank()]
		tr.Comm = c
		if err := tr.CheckInSync(); err != nil {
			return err
		}
		return tr.Fit(context.Background())
	})
	for r, err := range errs {
		if err != nil || trs[r].State.Step != 2 {
			t.Errorf("rank %d: step %d, error %v; want 2 steps", r, trs[r].State.Step, err)
		}
	}
}
