package augment

import (
	"fmt"

	"github.com/ftune/ftune/data/prep"
)

// PromptDropout replaces prompt tokens (those with an ignored label) by
// ReplaceID with probability P, so the model learns to answer from
// imperfect prompts. Learnt tokens are never touched, nor tokens for which
// Protect returns true (the template's role and turn markers, typically).
type PromptDropout struct {
	P         float64
	ReplaceID int32 // an unknown or pad token id
	Protect   func(id int32) bool
}

// Apply returns a copy of t with prompt tokens dropped; t is not modified.
func (d PromptDropout) Apply(t prep.Tokenized, r *prep.Rand) (prep.Tokenized, error) {
	if d.P < 0 || d.P > 1 || d.P != d.P {
		return t, fmt.Errorf("prompt dropout: probability %v not in [0, 1]", d.P)
	}
	if len(t.IDs) != len(t.Labels) {
		return t, fmt.Errorf("prompt dropout: %s has %d ids and %d labels", t.Source, len(t.IDs), len(t.Labels))
	}
	out := t
	out.IDs = append([]int32(nil), t.IDs...)
	for i, l := range t.Labels {
		if l != prep.IgnoreIndex || (d.Protect != nil && d.Protect(t.IDs[i])) {
			continue
		}
		// One draw per candidate token whatever P is, so that the same seed
		// drops a subset of the same positions at a higher P.
		if r.Float64() < d.P {
			out.IDs[i] = d.ReplaceID
		}
	}
	return out, nil
}
