package prep

import (
	"fmt"
	"sort"
)

// Batch is rows stacked row-major into [B, T] arrays, ready to become
// tensors.
type Batch struct {
	B, T                                                     int
	InputIDs, Labels, PositionIDs, SegmentIDs, AttentionMask []int32
	Subjects                                                 []int // per row
}

// Stack stacks rows of equal length.
func Stack(rows []Row) (Batch, error) {
	if len(rows) == 0 {
		return Batch{}, fmt.Errorf("stack: no rows")
	}
	b := Batch{B: len(rows), T: len(rows[0].InputIDs)}
	for i, r := range rows {
		if len(r.InputIDs) != b.T {
			return Batch{}, fmt.Errorf("stack: row %d has length %d, row 0 has %d", i, len(r.InputIDs), b.T)
		}
		b.InputIDs = append(b.InputIDs, r.InputIDs...)
		b.Labels = append(b.Labels, r.Labels...)
		b.PositionIDs = append(b.PositionIDs, r.PositionIDs...)
		b.SegmentIDs = append(b.SegmentIDs, r.SegmentIDs...)
		b.AttentionMask = append(b.AttentionMask, r.AttentionMask...)
		b.Subjects = append(b.Subjects, r.Subject)
	}
	return b, nil
}

// Batches cuts rows into batches of batchSize (the last may be smaller).
func Batches(rows []Row, batchSize int) ([][]Row, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("batches: batch size %d must be positive", batchSize)
	}
	var out [][]Row
	for i := 0; i < len(rows); i += batchSize {
		out = append(out, rows[i:min(i+batchSize, len(rows))])
	}
	return out, nil
}

// GroupByLength makes padded batches of similar-length documents, as
// transformers' group_by_length does: a seeded shuffle, megabatches of
// 50 batches sorted by length and cut into batches, then the batches
// shuffled. Each batch is padded to its longest document only.
func GroupByLength(docs []Tokenized, batchSize int, padID int32, seed uint64) ([][]Row, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("group by length: batch size %d must be positive", batchSize)
	}
	r := NewRand(seed)
	idx := Perm(len(docs), r)
	mega := 50 * batchSize
	var groups [][]int
	for s := 0; s < len(idx); s += mega {
		m := idx[s:min(s+mega, len(idx))]
		sort.SliceStable(m, func(a, b int) bool { return len(docs[m[a]].IDs) > len(docs[m[b]].IDs) })
		for k := 0; k < len(m); k += batchSize {
			groups = append(groups, m[k:min(k+batchSize, len(m))])
		}
	}
	Shuffle(groups, r)
	out := make([][]Row, 0, len(groups))
	for _, g := range groups {
		sel := make([]Tokenized, len(g))
		for i, j := range g {
			sel[i] = docs[j]
		}
		rows, err := Pad(sel, 0, padID)
		if err != nil {
			return nil, err
		}
		out = append(out, rows)
	}
	return out, nil
}

// EpochBatches shuffles rows for one epoch and cuts them into batches.
// The order depends only on seed and epoch, so a run resumed at an epoch
// sees the same batches as an uninterrupted one.
func EpochBatches(rows []Row, batchSize int, seed, epoch uint64) ([][]Row, error) {
	shuffled := append([]Row(nil), rows...)
	Shuffle(shuffled, NewRand(seed^(epoch+1)*0x9e3779b97f4a7c15))
	return Batches(shuffled, batchSize)
}
