package prep

import (
	"context"
	"fmt"

	"github.com/ftune/ftune/data/format"
)

// RowOptions choose between packed rows and rows of one example.
type RowOptions struct {
	Pack     bool
	SeqLen   int // row length; for unpacked rows 0: no limit
	Strategy PackStrategy
}

// Rows tokenises examples and lays them out as packed rows of SeqLen, or
// one row per example (padded per batch by the loader). Run with Pack true and false over the same
// examples, it gives the two layouts whose summed losses must agree (the
// packing test through the model). Examples longer than the row are
// truncated, dropped or (plain text under Overflow Split) cut into pieces
// per p.Opts, with MaxLen defaulting to SeqLen.
func (p *Preprocessor) Rows(exs []format.Example, o RowOptions) ([]Row, Stats, error) {
	q := *p
	if o.SeqLen > 0 && (q.Opts.MaxLen == 0 || q.Opts.MaxLen > o.SeqLen) {
		q.Opts.MaxLen = o.SeqLen
	}
	if o.Pack && o.SeqLen <= 0 {
		return nil, Stats{}, fmt.Errorf("rows: packing needs a row length")
	}
	docs, st, err := q.TokenizeAll(exs)
	if err != nil {
		return nil, st, err
	}
	docs, _, _ = SplitLong(docs, q.Opts.MaxLen)
	// The documents are Rows' own: each goes once its row is built.
	if o.Pack {
		rows, _, err := PackContext(context.Background(), docs, PackOptions{SeqLen: o.SeqLen, Strategy: o.Strategy, Release: true})
		return rows, st, err
	}
	rows, err := PadReleasing(context.Background(), docs, o.SeqLen)
	return rows, st, err
}
