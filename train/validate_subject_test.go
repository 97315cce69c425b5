package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestValidationNamesItsOneSubject: validation on one named subject (a
// run on one data file) logs that subject's keys beside the overall ones,
// equal to them, so that the report's before/after table names its row
// after the data instead of "all".
func TestValidationNamesItsOneSubject(t *testing.T) {
	tr, _ := tinyBaseRun(t, train.Config{}, 0)
	m, err := tr.Validate(context.Background(), tr.Val)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"loss", "perplexity", "token_accuracy"} {
		all, ok1 := m["val/"+k]
		one, ok2 := m["val/s/"+k]
		if !ok1 || !ok2 || math.Float64bits(all) != math.Float64bits(one) {
			t.Errorf("val/%s = %v (%v), val/s/%s = %v (%v): want both, equal", k, all, ok1, k, one, ok2)
		}
	}
}
