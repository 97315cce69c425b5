package augment

import (
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// DataAugmentation gathers the augmentations a training config turns on.
// The zero value does nothing.
type DataAugmentation struct {
	NEFTuneAlpha float64 // noise on input embeddings (training only)

	PromptDropout float64 // probability of replacing a prompt token
	DropoutID     int32
	Protect       func(id int32) bool

	Phrasings [][]string // groups of equivalent instruction templates
	RotateP   float64    // probability of rephrasing an example

	DedupThreshold float64 // > 0: drop near duplicates at this Jaccard similarity

	Seed uint64
}

// Report counts what Examples changed.
type Report struct {
	Duplicates, Rotated int
}

// Examples applies the example-level augmentations: near-duplicate removal,
// then instruction rotation. exs is not modified.
func (a DataAugmentation) Examples(exs []format.Example) ([]format.Example, Report, error) {
	var rep Report
	out := exs
	if a.DedupThreshold > 0 {
		var err error
		if out, rep.Duplicates, err = DedupExamples(exs, DedupOptions{Threshold: a.DedupThreshold, Seed: a.Seed}); err != nil {
			return nil, rep, err
		}
	} else {
		out = append([]format.Example(nil), exs...)
	}
	if len(a.Phrasings) > 0 && a.RotateP > 0 {
		rot, err := NewRotator(a.Phrasings)
		if err != nil {
			return nil, rep, err
		}
		r := prep.NewRand(a.Seed ^ 0x726f74617465) // "rotate": its own stream
		for i := range out {
			if r.Float64() >= a.RotateP {
				continue
			}
			if ex, ok := rot.Rotate(out[i], r); ok {
				out[i] = ex
				rep.Rotated++
			}
		}
	}
	return out, rep, nil
}

// Tokens applies prompt dropout; epoch varies the draw between epochs.
func (a DataAugmentation) Tokens(docs []prep.Tokenized, epoch uint64) ([]prep.Tokenized, error) {
	if a.PromptDropout == 0 {
		return docs, nil
	}
	d := PromptDropout{P: a.PromptDropout, ReplaceID: a.DropoutID, Protect: a.Protect}
	r := prep.NewRand(a.Seed ^ (epoch+1)*0x9e3779b97f4a7c15)
	out := make([]prep.Tokenized, len(docs))
	for i, t := range docs {
		var err error
		if out[i], err = d.Apply(t, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Noise is the NEFTune hook configuration.
func (a DataAugmentation) Noise() NEFTune { return NEFTune{Alpha: a.NEFTuneAlpha, Seed: a.Seed} }
