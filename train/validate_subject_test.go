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

// TestValBatchesSpreadTheCap: a cap of k of n batches picks exactly k,
// the first among them, spread evenly (gaps of ⌊n/k⌋ or ⌈n/k⌉); no cap,
// or one of n or more, picks every batch.
func TestValBatchesSpreadTheCap(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{10, 3}, {155, 64}, {7, 1}, {64, 64}, {5, 9}, {12, 0}, {100, 99}} {
		picked := train.ValBatches(tc.n, tc.k)
		var got []int
		for i := range tc.n {
			if picked(i) {
				got = append(got, i)
			}
		}
		want := tc.k
		if tc.k == 0 || tc.k > tc.n {
			want = tc.n
		}
		if len(got) != want || got[0] != 0 {
			t.Errorf("n %d, cap %d: picked %v, want %d batches from 0", tc.n, tc.k, got, want)
			continue
		}
		lo, hi := tc.n/want, (tc.n+want-1)/want
		for j := 1; j < len(got); j++ {
			if d := got[j] - got[j-1]; d < lo || d > hi {
				t.Errorf("n %d, cap %d: gap %d between %d and %d, want %d to %d", tc.n, tc.k, d, got[j-1], got[j], lo, hi)
			}
		}
	}
}

// TestCappedValidationSamplesTheWholeSet: validation capped at 2 of 4
// batches evaluates batches 0 and 2 (rows of subjects b0 and b2 here),
// not the first two.
func TestCappedValidationSamplesTheWholeSet(t *testing.T) {
	tr, _ := tinyBaseRun(t, train.Config{}, 0)
	rows := tr.Val.(*train.RowLoader).Rows
	for i := range rows {
		rows[i].Subject = i / 2 // batches of 2 rows: subject bN is batch N
	}
	val, err := train.NewRowLoader(rows, []string{"b0", "b1", "b2", "b3"}, 2, false, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.Cfg.ValMaxBatches = 2
	m, err := tr.Validate(context.Background(), val)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"b0": true, "b1": false, "b2": true, "b3": false} {
		if _, ok := m["val/"+s+"/loss"]; ok != want {
			t.Errorf("subject %s (batch %s) evaluated %v, want %v: %v", s, s[1:], ok, want, m)
		}
	}
}
