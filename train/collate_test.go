package train

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"
)

// TestCollateLaysOutPackedRows: a batch of a packed row (two documents),
// a row of one document and a shorter one is padded to the longest row;
// the packed row's positions restart at its second document and its
// segments number the documents; padding is segment -1, masked out and
// unlabelled.
func TestCollateLaysOutPackedRows(t *testing.T) {
	const ig = prep.IgnoreIndex
	rows := []prep.Row{
		{InputIDs: []int32{5, 6, 7, 8, 9}, Learnt: []bool{false, true, false, false, true}, Starts: []int32{0, 2}, Docs: 2, Subject: 1},
		{InputIDs: []int32{10, 11, 12, 13}, Learnt: []bool{false, true, true, true}, Docs: 1, Subject: 0},
		{InputIDs: []int32{14, 15}, Learnt: []bool{false, true}, Docs: 1, Subject: -1},
	}
	b := Collate(rows, []string{"a", "b"}, 1, tensor.CPUDefault())
	if B, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1); B != 3 || T != 5 {
		t.Fatalf("batch %dx%d, want 3x5", B, T)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}
	check("ids", b.InputIDs.I64(), []int64{5, 6, 7, 8, 9, 10, 11, 12, 13, 1, 14, 15, 1, 1, 1})
	check("labels", b.Labels.I64(), []int64{ig, 6, ig, ig, 9, ig, 11, 12, 13, ig, ig, 15, ig, ig, ig})
	check("mask", b.AttentionMask.I64(), []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0})
	check("positions", b.PositionIDs, []int{0, 1, 0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4})
	check("segments", b.Segments.I64(), []int64{0, 0, 1, 1, 1, 0, 0, 0, 0, -1, 0, 0, -1, -1, -1})
	check("subjects", b.Subjects, []string{"b", "a", ""})
	if b.Tokens != 11 || b.Labelled != 6 {
		t.Errorf("%d tokens and %d labelled, want 11 and 6", b.Tokens, b.Labelled)
	}
}

// TestRowLoaderRefusesBadStarts: document starts that do not describe the
// row are refused naming the row, not met as wrong positions in training.
func TestRowLoaderRefusesBadStarts(t *testing.T) {
	ok := prep.Row{InputIDs: []int32{1, 2, 3}, Learnt: []bool{false, true, true}, Starts: []int32{0, 1}, Docs: 2}
	if _, err := NewRowLoader([]prep.Row{ok}, nil, 1, false, 0, 0, nil); err != nil {
		t.Fatalf("good starts refused: %v", err)
	}
	for _, starts := range [][]int32{nil, {0}, {1, 2}, {0, 0}, {0, 3}, {0, 2, 1}} {
		r := ok
		r.Starts = starts
		_, err := NewRowLoader([]prep.Row{ok, r}, nil, 1, false, 0, 0, nil)
		if err == nil || !strings.Contains(err.Error(), "row 1") {
			t.Errorf("starts %v: error %v, want one naming row 1", starts, err)
		}
	}
}
