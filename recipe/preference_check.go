package recipe

import (
	"context"
	"fmt"
	"io"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/train/dpo"
)

// TokenizePreferences tokenises preference records as a run under
// training.objective objective (ObjectiveDPO or ObjectiveKTO) does: DPO's
// pairs (tokenizePairs) or KTO's unpaired examples (tokenizeUnpaired,
// which unpairs pairs), fitted to maxLen tokens; skip is data.skip_bad,
// and log hears what the run says of them. A record of the wrong kind is
// the run's error. ftune data validate counts and shows them with it, so
// that what it reports is what the run trains on.
func (p Text) TokenizePreferences(ctx context.Context, objective string, exs []format.Example, maxLen int, skip bool, log io.Writer) ([]dpo.Pair, prep.Stats, error) {
	switch objective {
	case ObjectiveDPO:
		return tokenizePairs(ctx, p, exs, maxLen, skip, log)
	case ObjectiveKTO:
		return tokenizeUnpaired(ctx, p, exs, maxLen, skip, log)
	}
	return nil, prep.Stats{}, fmt.Errorf("recipe: training.objective %q reads no preference records (dpo or kto do)", objective)
}
