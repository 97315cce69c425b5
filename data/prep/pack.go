package prep

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Row is one training sequence: one document, or several packed into a
// row of at most the row length.
//
// A row holds its real tokens only, 5 bytes each: Collate pads each batch
// to its longest row, so padding is never stored, and a token's label is
// its own id or IgnoreIndex, so a flag says which (rows held 20 bytes a
// token slot as five int32 slices padded to the row length). The
// documents of a packed row lie one after another; Starts says where each
// begins, and with it their position ids (restarting at 0 in each) and
// segments (0, 1, ... within the row), which limit attention to tokens of
// the same document (the model must never let a token attend across
// documents). The first token of every document is not learnt: labels are
// shifted inside the model, so its label would otherwise be predicted
// from the previous document's last token. With this, the summed loss of
// packed rows equals that of the same documents one per row.
type Row struct {
	InputIDs []int32
	// Learnt marks the tokens the loss learns: their label is their id,
	// the others' IgnoreIndex.
	Learnt []bool
	// Starts are the offsets in InputIDs where the row's documents begin,
	// Starts[0] = 0; nil for a row of one document.
	Starts []int32
	// Subject is the subject id shared by the row's documents, or -1 when
	// they come from several subjects.
	Subject int
	// Docs is the number of documents in the row.
	Docs int
}

// Label is token t's label: its id when learnt, else IgnoreIndex.
func (r Row) Label(t int) int32 {
	if r.Learnt[t] {
		return r.InputIDs[t]
	}
	return IgnoreIndex
}

// Labels returns every token's Label.
func (r Row) Labels() []int32 {
	out := make([]int32, len(r.InputIDs))
	for t := range out {
		out[t] = r.Label(t)
	}
	return out
}

// Layout returns the position id and the segment of each of the row's
// tokens: positions count from 0 in each document, segments number the
// documents from 0.
func (r Row) Layout() (positions, segments []int32) {
	positions, segments = make([]int32, len(r.InputIDs)), make([]int32, len(r.InputIDs))
	r.LayoutInto(positions, segments)
	return positions, segments
}

// LayoutInto writes Layout into positions and segments, at least as long
// as the row.
func (r Row) LayoutInto(positions, segments []int32) {
	starts := r.Starts
	if len(starts) == 0 {
		starts = []int32{0}
	}
	for d, start := range starts {
		end := int32(len(r.InputIDs))
		if d+1 < len(starts) {
			end = starts[d+1]
		}
		for t := start; t < end; t++ {
			positions[t], segments[t] = t-start, int32(d)
		}
	}
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
	Strategy PackStrategy
	// Release lets each document go as soon as its row is built: docs[i]
	// is zeroed (the caller's slice), so that a caller holding no other
	// reference to a document's arrays has them collected while the rest
	// are packed, and a corpus's tokens are not live twice, as documents
	// and as rows, at the height of packing. The rows are the same.
	Release bool
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
	return PackContext(context.Background(), docs, opts)
}

// PackContext is Pack stopping once ctx is done (packing 100 MB of text
// takes a second or more), returning ctx's error.
func PackContext(ctx context.Context, docs []Tokenized, opts PackOptions) ([]Row, PackStats, error) {
	if opts.SeqLen <= 0 {
		return nil, PackStats{}, fmt.Errorf("pack: row length %d must be positive", opts.SeqLen)
	}
	for i, d := range docs {
		if err := checkDoc(i, d, opts.SeqLen); err != nil {
			if len(d.IDs) > opts.SeqLen {
				err = fmt.Errorf("%w: set MaxLen", err)
			}
			return nil, PackStats{}, fmt.Errorf("pack: %w", err)
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
		if r%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, PackStats{}, fmt.Errorf("pack: interrupted: %w", err)
			}
		}
		rows[r] = buildRow(docs, bin)
		if opts.Release {
			release(docs, bin)
		}
		st.Docs += len(bin)
		st.Tokens += len(rows[r].InputIDs)
	}
	st.Rows = len(rows)
	st.PadTokens = st.Rows*opts.SeqLen - st.Tokens
	return rows, st, nil
}

// release zeroes docs[bin...], once their row is built.
func release(docs []Tokenized, bin []int) {
	for _, i := range bin {
		docs[i] = Tokenized{}
	}
}

// buildRow lays out the documents docs[bin...] one after another, in one
// allocation for the ids and labels.
func buildRow(docs []Tokenized, bin []int) Row {
	n := 0
	for _, i := range bin {
		n += len(docs[i].IDs)
	}
	r := Row{InputIDs: make([]int32, n), Learnt: make([]bool, n), Docs: len(bin), Subject: -1}
	if len(bin) > 1 {
		r.Starts = make([]int32, len(bin))
	}
	pos := 0
	for seg, i := range bin {
		d := docs[i]
		if seg == 0 {
			r.Subject = d.Subject
		} else if d.Subject != r.Subject {
			r.Subject = -1
		}
		if r.Starts != nil {
			r.Starts[seg] = int32(pos)
		}
		copy(r.InputIDs[pos:], d.IDs)
		if d.Labels == nil && d.Learnt != nil {
			for j, m := range d.Learnt[1:] {
				r.Learnt[pos+1+j] = m != 0
			}
		} else {
			for j, l := range d.Labels[1:] {
				r.Learnt[pos+1+j] = l != IgnoreIndex
			}
		}
		pos += len(d.IDs)
	}
	return r
}

// SplitLong cuts each document longer than n tokens into consecutive
// pieces of n tokens (the last one shorter), each a document of its own
// that a row of n holds: what Options.Overflow Split kept whole. The
// pieces share the document's arrays. A piece's first token is context
// only, as every document's is (nothing before it in its row predicts
// it), so a last piece of one token, which would teach nothing, is left
// out. split counts the documents cut, pieces what they became; docs
// comes back as it is when none is longer than n.
func SplitLong(docs []Tokenized, n int) (out []Tokenized, split, pieces int) {
	if !slices.ContainsFunc(docs, func(d Tokenized) bool { return d.Cut(n) }) {
		return docs, 0, 0
	}
	out = make([]Tokenized, 0, len(docs))
	for _, d := range docs {
		if !d.Cut(n) {
			out = append(out, d)
			continue
		}
		split++
		for start := 0; start < len(d.IDs); start += n {
			end := min(start+n, len(d.IDs))
			if end-start < 2 {
				break
			}
			piece := d
			piece.IDs = d.IDs[start:end:end]
			if d.Labels == nil && d.Learnt != nil {
				piece.Learnt = d.Learnt[start:end:end]
			} else {
				piece.Labels = d.Labels[start:end:end]
			}
			out = append(out, piece)
			pieces++
		}
	}
	return out, split, pieces
}

// Cut reports whether SplitLong cuts t into pieces of n tokens (n > 0):
// what its split count counts, which data validate counts document by
// document.
func (t Tokenized) Cut(n int) bool { return n > 0 && len(t.IDs) > n }

// Pad makes one row per document, of at most length tokens (0: no limit);
// Collate pads each batch to its longest row. Labels are laid out as in
// Pack (first label of the document ignored), so Pad and Pack rows of the
// same documents hold the same targets.
func Pad(docs []Tokenized, length int) ([]Row, error) {
	return PadContext(context.Background(), docs, length)
}

// PadContext is Pad stopping once ctx is done, returning ctx's error.
func PadContext(ctx context.Context, docs []Tokenized, length int) ([]Row, error) {
	return pad(ctx, docs, length, false)
}

// PadReleasing is PadContext letting each document go once its row is
// built, as PackOptions.Release: docs[i] is zeroed. The rows are the same.
func PadReleasing(ctx context.Context, docs []Tokenized, length int) ([]Row, error) {
	return pad(ctx, docs, length, true)
}

func pad(ctx context.Context, docs []Tokenized, length int, rel bool) ([]Row, error) {
	if length == 0 {
		length = math.MaxInt
	}
	rows := make([]Row, 0, len(docs))
	for i, d := range docs {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("pad: interrupted: %w", err)
			}
		}
		if err := checkDoc(i, d, length); err != nil {
			return nil, fmt.Errorf("pad: %w", err)
		}
		if len(d.IDs) == 0 {
			continue
		}
		rows = append(rows, buildRow(docs, []int{i}))
		if rel {
			release(docs, []int{i})
		}
	}
	return rows, nil
}

// checkDoc checks that document i fits a row of length tokens and that
// each of its labels is its token's id or IgnoreIndex, what a row holds.
func checkDoc(i int, d Tokenized, length int) error {
	if len(d.IDs) > length {
		return fmt.Errorf("document %d (%s) has %d tokens, more than the row length %d", i, d.Source, len(d.IDs), length)
	}
	if len(d.IDs) != d.labelsLen() {
		return fmt.Errorf("document %d (%s) has %d ids and %d labels", i, d.Source, len(d.IDs), d.labelsLen())
	}
	for t, l := range d.Labels { // a mask (Learnt) holds nothing else
		if l != IgnoreIndex && l != d.IDs[t] {
			return fmt.Errorf("document %d (%s): token %d's label %d is neither its id %d nor IgnoreIndex", i, d.Source, t, l, d.IDs[t])
		}
	}
	return nil
}

// Targets counts the labels that contribute to the loss: positions t+1
// with a label, predicted from position t of the same document. It is the
// normaliser of a mean loss and must be equal for Pack and Pad rows of the
// same documents.
func Targets(rows []Row) int {
	n := 0
	for _, r := range rows {
		_, seg := r.Layout()
		for t := 0; t+1 < len(r.Learnt); t++ {
			if r.Learnt[t+1] && seg[t+1] == seg[t] {
				n++
			}
		}
	}
	return n
}
