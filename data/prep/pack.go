package prep

import (
	"fmt"
	"sort"
)

// Row is one training sequence of fixed or batch length.
//
// For packed rows several documents share the row: PositionIDs restart at 0
// for each one and SegmentIDs number them 0, 1, ... within the row, so that
// attention can be limited to tokens of the same segment (the model must
// never let a token attend across documents). The first label of every
// document is IgnoreIndex: labels are shifted inside the model, so that
// label would otherwise be predicted from the previous document's last
// token. With this, the summed loss of packed rows equals that of the same
// documents padded one per row.
//
// Padding tokens have PadID, label IgnoreIndex, position 0, segment -1 and
// attention mask 0.
type Row struct {
	InputIDs      []int32
	Labels        []int32
	PositionIDs   []int32
	SegmentIDs    []int32
	AttentionMask []int32
	// Subject is the subject id shared by the row's documents, or -1 when
	// they come from several subjects.
	Subject int
	// Docs is the number of documents in the row.
	Docs int
}

// PackStrategy chooses how documents are placed into rows.
type PackStrategy int

const (
	// PackSequential fills rows in document order, starting a new row when
	// the next document does not fit. Order is kept, which makes packed and
	// unpacked runs easy to compare.
	PackSequential PackStrategy = iota
	// PackFirstFitDecreasing places the longest documents first, each in
	// the first row with room: fewer pad tokens, order not kept.
	PackFirstFitDecreasing
)

// PackOptions configure Pack.
type PackOptions struct {
	SeqLen   int
	PadID    int32
	Strategy PackStrategy
}

// PackStats describe the rows made.
type PackStats struct {
	Rows, Docs, Tokens, PadTokens int
}

// Efficiency is the fraction of row slots holding real tokens.
func (s PackStats) Efficiency() float64 {
	if s.Tokens+s.PadTokens == 0 {
		return 0
	}
	return float64(s.Tokens) / float64(s.Tokens+s.PadTokens)
}

// Pack places documents into rows of exactly SeqLen tokens. A document
// longer than SeqLen is an error: truncate or drop it first (Options.MaxLen).
func Pack(docs []Tokenized, opts PackOptions) ([]Row, PackStats, error) {
	if opts.SeqLen <= 0 {
		return nil, PackStats{}, fmt.Errorf("pack: row length %d must be positive", opts.SeqLen)
	}
	for i, d := range docs {
		if len(d.IDs) > opts.SeqLen {
			return nil, PackStats{}, fmt.Errorf("pack: document %d (%s) has %d tokens, more than the row length %d: set MaxLen", i, d.Source, len(d.IDs), opts.SeqLen)
		}
		if len(d.IDs) != len(d.Labels) {
			return nil, PackStats{}, fmt.Errorf("pack: document %d (%s) has %d ids and %d labels", i, d.Source, len(d.IDs), len(d.Labels))
		}
	}
	var bins [][]int // document indices per row
	switch opts.Strategy {
	case PackSequential:
		used := 0
		for i, d := range docs {
			n := len(d.IDs)
			if n == 0 {
				continue
			}
			if len(bins) == 0 || used+n > opts.SeqLen {
				bins = append(bins, nil)
				used = 0
			}
			bins[len(bins)-1] = append(bins[len(bins)-1], i)
			used += n
		}
	case PackFirstFitDecreasing:
		order := make([]int, len(docs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return len(docs[order[a]].IDs) > len(docs[order[b]].IDs) })
		var free []int
		for _, i := range order {
			n := len(docs[i].IDs)
			if n == 0 {
				continue
			}
			placed := false
			for b := range bins {
				if free[b] >= n {
					bins[b] = append(bins[b], i)
					free[b] -= n
					placed = true
					break
				}
			}
			if !placed {
				bins = append(bins, []int{i})
				free = append(free, opts.SeqLen-n)
			}
		}
	default:
		return nil, PackStats{}, fmt.Errorf("pack: unknown strategy %d", opts.Strategy)
	}
	rows := make([]Row, len(bins))
	var st PackStats
	for r, bin := range bins {
		rows[r] = buildRow(docs, bin, opts.SeqLen, opts.PadID)
		st.Docs += len(bin)
		for _, m := range rows[r].AttentionMask {
			if m == 1 {
				st.Tokens++
			} else {
				st.PadTokens++
			}
		}
	}
	st.Rows = len(rows)
	return rows, st, nil
}

// buildRow lays out the documents docs[bin...] from position 0 and pads to
// length.
func buildRow(docs []Tokenized, bin []int, length int, padID int32) Row {
	r := Row{
		InputIDs:      make([]int32, length),
		Labels:        make([]int32, length),
		PositionIDs:   make([]int32, length),
		SegmentIDs:    make([]int32, length),
		AttentionMask: make([]int32, length),
		Docs:          len(bin),
		Subject:       -1,
	}
	pos := 0
	for seg, i := range bin {
		d := docs[i]
		if seg == 0 {
			r.Subject = d.Subject
		} else if d.Subject != r.Subject {
			r.Subject = -1
		}
		copy(r.InputIDs[pos:], d.IDs)
		copy(r.Labels[pos:], d.Labels)
		r.Labels[pos] = IgnoreIndex
		for j := range d.IDs {
			r.PositionIDs[pos+j] = int32(j)
			r.SegmentIDs[pos+j] = int32(seg)
			r.AttentionMask[pos+j] = 1
		}
		pos += len(d.IDs)
	}
	for j := pos; j < length; j++ {
		r.InputIDs[j] = padID
		r.Labels[j] = IgnoreIndex
		r.SegmentIDs[j] = -1
	}
	return r
}

// Pad makes one row per document, padded on the right to length (0: the
// longest document). Labels are laid out as in Pack (first label of the
// document ignored), so Pad and Pack rows of the same documents hold the
// same targets.
func Pad(docs []Tokenized, length int, padID int32) ([]Row, error) {
	if length == 0 {
		for _, d := range docs {
			length = max(length, len(d.IDs))
		}
	}
	rows := make([]Row, 0, len(docs))
	for i, d := range docs {
		if len(d.IDs) > length {
			return nil, fmt.Errorf("pad: document %d (%s) has %d tokens, more than the row length %d", i, d.Source, len(d.IDs), length)
		}
		if len(d.IDs) != len(d.Labels) {
			return nil, fmt.Errorf("pad: document %d (%s) has %d ids and %d labels", i, d.Source, len(d.IDs), len(d.Labels))
		}
		if len(d.IDs) == 0 {
			continue
		}
		rows = append(rows, buildRow(docs, []int{i}, length, padID))
	}
	return rows, nil
}

// Targets counts the labels that contribute to the loss: positions t+1
// with a label, predicted from position t of the same segment. It is the
// normaliser of a mean loss and must be equal for Pack and Pad rows of the
// same documents.
func Targets(rows []Row) int {
	n := 0
	for _, r := range rows {
		for t := 0; t+1 < len(r.Labels); t++ {
			if r.Labels[t+1] != IgnoreIndex && r.SegmentIDs[t+1] == r.SegmentIDs[t] {
				n++
			}
		}
	}
	return n
}
