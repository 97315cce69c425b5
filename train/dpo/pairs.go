package dpo

import (
	"fmt"
	"io"
	"slices"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// Pair is one preference, tokenised: the prompt's ids and the two
// completions' ids that follow it. KTO's unpaired examples are Pairs with
// one completion (unpaired.go).
type Pair struct {
	Prompt, Chosen, Rejected []int32
	Source                   string // "file:line", for errors
}

// TruncStats counts what MakePairs did to fit the length limit.
type TruncStats struct {
	Kept, Truncated, Dropped int
}

// MakePairs checks the pairs and fits them to maxLen tokens a row (0: no
// limit): a completion that runs past it is cut at the end (TRL's
// truncation_mode "keep_start" on the completion), a pair whose prompt
// leaves no room for a completion token is dropped. A pair whose
// completions are the same teaches nothing (its gradient is 0) and is
// refused, naming its source, as is an empty prompt or completion.
func MakePairs(pairs []Pair, maxLen int) ([]Pair, TruncStats, error) {
	var st TruncStats
	out := make([]Pair, 0, len(pairs))
	for _, p := range pairs {
		switch {
		case len(p.Prompt) == 0:
			return nil, st, fmt.Errorf("%s: the prompt is empty (DPO compares two completions of one prompt)", p.Source)
		case len(p.Chosen) == 0 || len(p.Rejected) == 0:
			return nil, st, fmt.Errorf("%s: an empty completion (chosen %d tokens, rejected %d)", p.Source, len(p.Chosen), len(p.Rejected))
		case slices.Equal(p.Chosen, p.Rejected):
			return nil, st, fmt.Errorf("%s: the chosen and the rejected completions are the same tokens: the pair teaches nothing", p.Source)
		}
		if maxLen > 0 {
			room := maxLen - len(p.Prompt)
			if room < 1 {
				st.Dropped++
				continue
			}
			if len(p.Chosen) > room || len(p.Rejected) > room {
				st.Truncated++
				p.Chosen, p.Rejected = p.Chosen[:min(room, len(p.Chosen))], p.Rejected[:min(room, len(p.Rejected))]
				if slices.Equal(p.Chosen, p.Rejected) {
					// The two agree on everything the length keeps.
					st.Truncated--
					st.Dropped++
					continue
				}
			}
		}
		st.Kept++
		out = append(out, p)
	}
	return out, st, nil
}

// row is the prompt followed by a completion, labelled on the completion.
func row(prompt, completion []int32) prep.Row {
	n := len(prompt) + len(completion)
	r := prep.Row{InputIDs: make([]int32, 0, n), Learnt: make([]bool, n), Docs: 1}
	r.InputIDs = append(append(r.InputIDs, prompt...), completion...)
	for t := len(prompt); t < n; t++ {
		r.Learnt[t] = true
	}
	return r
}

// Loader batches pairs as train.Loader: BatchSize pairs a batch, 2 ×
// BatchSize rows (the chosen first, then the rejected in the same order),
// padded on the right to the batch's longest, shuffled per epoch from Seed
// when Shuffle is set (train.Order: Seek makes a resumed run continue
// where it stopped).
type Loader struct {
	train.Order
	Pairs   []Pair
	PadID   int
	Backend tensor.Backend
}

// NewLoader checks the settings and starts at epoch 0.
func NewLoader(pairs []Pair, batchSize int, shuffle bool, seed uint64, padID int, be tensor.Backend) (*Loader, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("dpo: batch size must be > 0, got %d", batchSize)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("dpo: no preference pairs")
	}
	if be == nil {
		be = tensor.CPUDefault()
	}
	l := &Loader{Order: train.Order{N: len(pairs), BatchSize: batchSize, Shuffle: shuffle, Seed: seed}, Pairs: pairs, PadID: padID, Backend: be}
	l.StartEpoch(0)
	return l, nil
}

func (l *Loader) Next() (train.Batch, error) {
	idx := l.NextBatch()
	if idx == nil {
		return train.Batch{}, io.EOF
	}
	rows := make([]prep.Row, 2*len(idx))
	for i, k := range idx {
		p := l.Pairs[k]
		rows[i], rows[len(idx)+i] = row(p.Prompt, p.Chosen), row(p.Prompt, p.Rejected)
	}
	return train.Collate(rows, nil, l.PadID, l.Backend), nil
}
