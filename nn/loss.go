package nn

import (
	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// chunkedLoss is the training loss without full logits: the LM head and the
// cross-entropy run fused over chunks of rows (autograd.LinearCrossEntropy).
// An lm_head with an adapter falls back to the plain path.
func (m *Model) chunkedLoss(tp *autograd.Tape, h *autograd.Var, labels *tensor.Tensor, chunk int) (*autograd.Var, error) {
	if m.LMHead.Adapter != nil || m.LMHead.Bias != nil {
		return m.shiftedLoss(tp, m.logits(tp, h), labels)
	}
	H := h.Value.Dim(-1)
	return tp.LinearSoftcapCrossEntropy(tp.Reshape(h, -1, H), m.LMHead.Weight, shiftLabels(tp, labels), IgnoreIndex, chunk, m.Config.FinalSoftcap)
}
