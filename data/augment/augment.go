package augment

import (
	"fmt"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// DataAugmentation gathers the example- and row-level augmentations a run
// turns on (the data.augment keys). The zero value does nothing. NEFTune,
// which acts on embeddings, is configured on its own (NEFTune).
type DataAugmentation struct {
	// DedupThreshold > 0 drops near-duplicate examples at this Jaccard
	// similarity of word shingles (data.augment.dedup).
	DedupThreshold float64

	// Phrasings are groups of equivalent instruction templates; RotateP is
	// the probability of rewriting a matching example with another
	// phrasing of its group (data.augment.rephrase).
	Phrasings [][]string
	RotateP   float64

	// PromptDropout is the probability of replacing a prompt token by
	// DropoutID in each batch (data.augment.prompt_dropout); Protect keeps
	// the template's markers.
	PromptDropout float64
	DropoutID     int32
	Protect       func(id int32) bool

	Seed uint64
}

// Dedup removes near-duplicate examples, keeping the first of each group,
// and counts what it removed. exs is not modified.
func (a DataAugmentation) Dedup(exs []format.Example) ([]format.Example, int, error) {
	if a.DedupThreshold <= 0 {
		return exs, 0, nil
	}
	return DedupExamples(exs, DedupOptions{Threshold: a.DedupThreshold, Seed: a.Seed})
}

// Rephrase rewrites each example whose instruction matches a phrasing
// with probability RotateP, and counts the rewritten ones. exs is not
// modified.
func (a DataAugmentation) Rephrase(exs []format.Example) ([]format.Example, int, error) {
	out := append([]format.Example(nil), exs...)
	if len(a.Phrasings) == 0 || a.RotateP <= 0 {
		return out, 0, nil
	}
	rot, err := NewRotator(a.Phrasings)
	if err != nil {
		return nil, 0, err
	}
	r := prep.NewRand(a.Seed ^ 0x726f74617465) // "rotate": its own stream
	n := 0
	for i := range out {
		if r.Float64() >= a.RotateP {
			continue
		}
		if ex, ok := rot.Rotate(out[i], r); ok {
			out[i] = ex
			n++
		}
	}
	return out, n, nil
}

// Rows applies prompt dropout to one batch of rows: batch index of epoch
// selects the draw, so every epoch sees other dropped tokens and a resumed
// run the same ones. rows are not modified.
func (a DataAugmentation) Rows(rows []prep.Row, epoch, index int) ([]prep.Row, error) {
	if a.PromptDropout == 0 {
		return rows, nil
	}
	d := PromptDropout{P: a.PromptDropout, ReplaceID: a.DropoutID, Protect: a.Protect}
	r := prep.NewRand(a.Seed ^ uint64(epoch+1)*0x9e3779b97f4a7c15 ^ uint64(index)*0xd1b54a32d192ed03)
	out := make([]prep.Row, len(rows))
	for i, row := range rows {
		t, err := d.Apply(prep.Tokenized{IDs: row.InputIDs, Labels: row.Labels(), Source: fmt.Sprintf("row %d of batch %d", i, index)}, r)
		if err != nil {
			return nil, err
		}
		out[i] = row
		out[i].InputIDs = t.IDs
	}
	return out, nil
}
