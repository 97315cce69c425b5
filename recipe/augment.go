package recipe

import (
	"fmt"
	"io"
	"math"

	"github.com/ftune/ftune/data/augment"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// checkAugment refuses data.augment values out of range, and rephrasing
// when no selected subject has phrasings to rephrase with.
func checkAugment(o Options, srcs []*source) error {
	in := func(v, hi float64, closed bool) bool {
		return !math.IsNaN(v) && v >= 0 && (v < hi || closed && v == hi)
	}
	switch {
	case !in(o.Dedup, 1, true):
		return fmt.Errorf("data.augment.dedup: %v: expected a similarity in [0, 1] (0 = off)", o.Dedup)
	case !in(o.Rephrase, 1, true):
		return fmt.Errorf("data.augment.rephrase: %v: expected a probability in [0, 1] (0 = off)", o.Rephrase)
	case !in(o.PromptDropout, 1, false):
		return fmt.Errorf("data.augment.prompt_dropout: %v: expected a probability in [0, 1) (0 = off)", o.PromptDropout)
	}
	if o.Rephrase > 0 {
		any := false
		for _, s := range srcs {
			any = any || len(s.phrasings) > 0
			if len(s.phrasings) > 0 {
				if _, err := augment.NewRotator(s.phrasings); err != nil {
					return fmt.Errorf("%s: phrasings: %w", s.where, err)
				}
			}
		}
		if !any {
			return fmt.Errorf("data.augment.rephrase: no selected subject has phrasings in its subject.yaml to rephrase with")
		}
	}
	return nil
}

// dedup drops near-duplicate examples of a subject's training file
// (data.augment.dedup) and says how many.
func dedup(o Options, s *source, exs []format.Example, log io.Writer) ([]format.Example, error) {
	if o.Dedup == 0 {
		return exs, nil
	}
	out, n, err := augment.DataAugmentation{DedupThreshold: o.Dedup, Seed: o.DataSeed}.Dedup(exs)
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", s.name, err)
	}
	fmt.Fprintf(log, "subject %s: %d near-duplicate training examples dropped (data.augment.dedup %g)\n", s.name, n, o.Dedup)
	return out, nil
}

// rephrase rewrites training instructions with the subject's phrasings
// (data.augment.rephrase) and says how many.
func rephrase(o Options, s *source, exs []format.Example, log io.Writer) ([]format.Example, error) {
	if o.Rephrase == 0 || len(s.phrasings) == 0 {
		return exs, nil
	}
	out, n, err := augment.DataAugmentation{Phrasings: s.phrasings, RotateP: o.Rephrase, Seed: splitSeed(o.DataSeed, s.name)}.Rephrase(exs)
	if err != nil {
		return nil, fmt.Errorf("%s: phrasings: %w", s.where, err)
	}
	fmt.Fprintf(log, "subject %s: %d of %d training instructions rephrased (data.augment.rephrase %g)\n", s.name, n, len(exs), o.Rephrase)
	return out, nil
}

// promptDropout is the per-batch prompt dropout of the training loader
// (data.augment.prompt_dropout), nil when off: prompt tokens become the
// pad token; answers and special tokens (the template's turn markers)
// are kept.
func promptDropout(o Options, tp Text) func([]prep.Row, int, int) ([]prep.Row, error) {
	if o.PromptDropout == 0 {
		return nil
	}
	pad := int32(tp.pad)
	a := augment.DataAugmentation{PromptDropout: o.PromptDropout, DropoutID: pad, Seed: o.DataSeed,
		Protect: func(id int32) bool { return id == pad || tp.tok.IsSpecial(int(id)) }}
	return a.Rows
}
