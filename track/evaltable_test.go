package track

import (
	"slices"
	"testing"
)

// TestBeforeAfterOneSubject: a run of one subject gets one row holding its
// validation loss (logged as the overall val/loss), not an "all" row and a
// subject row alike.
func TestBeforeAfterOneSubject(t *testing.T) {
	tab := BeforeAfter(Values{
		EvalBeforePrefix + "val/loss": 9.5, EvalAfterPrefix + "val/loss": 3.5,
		EvalBeforePrefix + "exact_match/all": 0, EvalBeforePrefix + "exact_match/chemistry": 0,
		EvalAfterPrefix + "exact_match/all": 0.5, EvalAfterPrefix + "exact_match/chemistry": 0.5,
	})
	if len(tab.Rows) != 1 || tab.Rows[0].Subject != "chemistry" || !slices.Equal(tab.Metrics, []string{"validation loss", "exact match"}) {
		t.Fatalf("table %+v", tab)
	}
	if r := tab.Rows[0]; !slices.Equal(r.Before, []string{"9.5", "0"}) || !slices.Equal(r.After, []string{"3.5", "0.5"}) {
		t.Errorf("row %+v", r)
	}
}

// TestBeforeAfterDPO: a DPO run's table has its loss and the reward
// accuracy and margin, in one row for all its pairs.
func TestBeforeAfterDPO(t *testing.T) {
	tab := BeforeAfter(Values{
		EvalBeforePrefix + "val/loss": 0.6931, EvalAfterPrefix + "val/loss": 0.27,
		EvalBeforePrefix + "val/rewards/accuracies": 0, EvalAfterPrefix + "val/rewards/accuracies": 0.875,
		EvalBeforePrefix + "val/rewards/margins": 0, EvalAfterPrefix + "val/rewards/margins": 2.2,
	})
	if len(tab.Rows) != 1 || tab.Rows[0].Subject != "all" || !slices.Equal(tab.Metrics, []string{"validation loss", "reward accuracy", "reward margin"}) {
		t.Fatalf("table %+v", tab)
	}
	if r := tab.Rows[0]; !slices.Equal(r.After, []string{"0.27", "0.875", "2.2"}) {
		t.Errorf("row %+v", r)
	}
}
