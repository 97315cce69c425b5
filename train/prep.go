package train

import (
	"github.com/ftune/ftune/data/prep"
)

// FromPrep converts the data pipeline's rows (packed or padded, int32) into
// trainer rows, naming each row's subject (prep gives an index; -1 means a
// packed row mixing subjects). Trailing padding is dropped: Collate pads
// each batch to its own longest row.
func FromPrep(rows []prep.Row, subjects []string) []Row {
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		n := len(r.InputIDs)
		for n > 0 && r.AttentionMask != nil && r.AttentionMask[n-1] == 0 {
			n--
		}
		row := Row{IDs: make([]int, n), Labels: make([]int, n)}
		if r.Subject >= 0 && r.Subject < len(subjects) {
			row.Subject = subjects[r.Subject]
		}
		packed := r.Docs > 1
		if packed {
			row.Positions = make([]int, n)
			row.Segments = make([]int, n)
		}
		for i := 0; i < n; i++ {
			row.IDs[i], row.Labels[i] = int(r.InputIDs[i]), int(r.Labels[i])
			if packed {
				row.Positions[i], row.Segments[i] = int(r.PositionIDs[i]), int(r.SegmentIDs[i])
			}
		}
		out = append(out, row)
	}
	return out
}
