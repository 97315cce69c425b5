package dpo

import (
	"fmt"
	"io"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// KTO's examples are Pairs with one completion: Chosen when it is
// desirable, Rejected when it is not.

// completion is an unpaired example's completion and whether it is
// desirable.
func (p Pair) completion() ([]int32, bool) {
	if p.Chosen != nil {
		return p.Chosen, true
	}
	return p.Rejected, false
}

// MakeUnpaired checks KTO's examples and fits them to maxLen tokens a row
// (0: no limit). A Pair with both completions (a preference pair) is two
// examples, its chosen desirable and its rejected undesirable, as TRL's
// KTOTrainer unpairs paired data. A completion that runs past maxLen is
// cut at its end (TRL's collator keeps a row's start); an example whose
// prompt leaves no room for a completion token is dropped (TRL keeps the
// examples whose prompt is shorter than max_length). An empty prompt or
// completion is refused, naming its source.
func MakeUnpaired(pairs []Pair, maxLen int) ([]Pair, TruncStats, error) {
	var st TruncStats
	out := make([]Pair, 0, len(pairs))
	for _, p := range pairs {
		halves := []Pair{p}
		if p.Chosen != nil && p.Rejected != nil {
			halves = []Pair{{Prompt: p.Prompt, Chosen: p.Chosen, Source: p.Source}, {Prompt: p.Prompt, Rejected: p.Rejected, Source: p.Source}}
		}
		for _, e := range halves {
			c, desirable := e.completion()
			switch {
			case len(e.Prompt) == 0:
				return nil, st, fmt.Errorf("%s: the prompt is empty (KTO scores a completion of a prompt)", e.Source)
			case len(c) == 0:
				return nil, st, fmt.Errorf("%s: the completion is empty", e.Source)
			}
			if maxLen > 0 {
				room := maxLen - len(e.Prompt)
				if room < 1 {
					st.Dropped++
					continue
				}
				if len(c) > room {
					st.Truncated++
					e.Chosen, e.Rejected = nil, nil
					if desirable {
						e.Chosen = c[:room]
					} else {
						e.Rejected = c[:room]
					}
				}
			}
			st.Kept++
			out = append(out, e)
		}
	}
	return out, st, nil
}

// UnpairedLoader batches KTO's examples (MakeUnpaired's) as train.Loader:
// BatchSize examples a batch, each a row of its prompt followed by its
// completion, labelled on the completion; with KL, as many mismatched rows
// after them: example i's prompt followed by the completion of example
// i−1 of the batch (the first takes the last's; TRL's rotation of the
// completions by one), cut to MaxLen (0: no limit) as TRL's collator cuts
// its rows. The rows' Subjects name them: RowDesirable, RowUndesirable or
// RowMismatched. Padded on the right to the batch's longest row; shuffled
// per epoch from Seed when Shuffle is set (train.Order: Seek makes a
// resumed run continue where it stopped).
type UnpairedLoader struct {
	train.Order
	Examples []Pair
	KL       bool
	MaxLen   int
	PadID    int
	Backend  tensor.Backend
}

// NewUnpairedLoader checks the settings and starts at epoch 0.
func NewUnpairedLoader(examples []Pair, batchSize int, shuffle bool, seed uint64, kl bool, maxLen, padID int, be tensor.Backend) (*UnpairedLoader, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("kto: batch size must be > 0, got %d", batchSize)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("kto: no examples")
	}
	if be == nil {
		be = tensor.CPUDefault()
	}
	l := &UnpairedLoader{Order: train.Order{N: len(examples), BatchSize: batchSize, Shuffle: shuffle, Seed: seed}, Examples: examples, KL: kl, MaxLen: maxLen, PadID: padID, Backend: be}
	l.StartEpoch(0)
	return l, nil
}

func (l *UnpairedLoader) Next() (train.Batch, error) {
	idx := l.NextBatch()
	if idx == nil {
		return train.Batch{}, io.EOF
	}
	n := len(idx)
	rows := make([]prep.Row, 0, 2*n)
	names := make([]string, 0, 2*n)
	for _, k := range idx {
		e := l.Examples[k]
		c, desirable := e.completion()
		rows = append(rows, row(e.Prompt, c))
		names = append(names, map[bool]string{true: RowDesirable, false: RowUndesirable}[desirable])
	}
	if l.KL {
		for i, k := range idx {
			prompt := l.Examples[k].Prompt
			c, _ := l.Examples[idx[(i+n-1)%n]].completion()
			if l.MaxLen > 0 {
				c = c[:min(len(c), max(l.MaxLen-len(prompt), 0))]
			}
			rows = append(rows, row(prompt, c))
			names = append(names, RowMismatched)
		}
	}
	b := train.Collate(rows, nil, l.PadID, l.Backend)
	copy(b.Subjects, names)
	return b, nil
}
