package augment

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/data/prep"
)

// NEFTune adds the noise of NEFTune (Jain et al. 2023, "NEFTune: Noisy
// Embeddings Improve Instruction Finetuning") to input embeddings during
// training: uniform noise in [-m, m] with m = alpha / sqrt(L*d), where L is
// the (padded) sequence length and d the embedding width, as TRL's
// neftune_post_forward_hook does. It is never applied at evaluation.
type NEFTune struct {
	Alpha float64 // 0 turns it off; the paper uses 5, 10 or 15
	Seed  uint64
}

// Magnitude is the bound m of the noise for a sequence length and width.
func (n NEFTune) Magnitude(seqLen, dim int) float64 {
	return n.Alpha / math.Sqrt(float64(seqLen)*float64(dim))
}

// Apply adds noise in place to emb, a batch of [B, seqLen, dim] embeddings
// (row-major). step selects the noise so that a resumed run draws the same
// values; training false leaves emb unchanged (evaluation).
func (n NEFTune) Apply(emb []float32, seqLen, dim int, step uint64, training bool) error {
	if seqLen <= 0 || dim <= 0 || len(emb)%(seqLen*dim) != 0 {
		return fmt.Errorf("neftune: %d values are not a whole number of [%d, %d] sequences", len(emb), seqLen, dim)
	}
	if !training || n.Alpha == 0 {
		return nil
	}
	if n.Alpha < 0 || math.IsNaN(n.Alpha) {
		return fmt.Errorf("neftune: alpha %v must be >= 0", n.Alpha)
	}
	m := n.Magnitude(seqLen, dim)
	r := prep.NewRand(n.Seed ^ (step * 0xd1b54a32d192ed03))
	for i := range emb {
		emb[i] += float32((2*r.Float64() - 1) * m)
	}
	return nil
}
