package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// softcapOK refuses attention-score soft-capping (Gemma 2's
// attn_logit_softcapping): the CUDA kernels compute uncapped scores, and
// ignoring the cap would give other attention weights silently. The
// backend does not implement tensor.SoftcapBackend (the final-logit cap)
// either, so package nn refuses a soft-capped model at load.
func softcapOK(p tensor.AttentionParams) error {
	if p.Softcap != 0 {
		return fmt.Errorf("cuda: %w: attention logit soft-capping (cap %g, Gemma 2's attn_logit_softcapping); run it on the CPU", tensor.ErrUnsupported, p.Softcap)
	}
	return nil
}
