package nn

import (
	"fmt"

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

// rowLosses is each token's loss against its shifted label, [B·T], through
// the fused head (autograd.LinearCrossEntropyRows). An lm_head with an
// adapter or a bias has no fused path, and a trained one no per-row
// gradient: both are refused rather than run another way.
func (m *Model) rowLosses(tp *autograd.Tape, h *autograd.Var, labels *tensor.Tensor, chunk int) (*autograd.Var, error) {
	if m.LMHead.Adapter != nil || m.LMHead.Bias != nil {
		return nil, fmt.Errorf("nn: per-token losses need a plain lm_head (this one has an adapter or a bias)")
	}
	if labels.Rank() != 2 || labels.Dim(0) != h.Value.Dim(0) || labels.Dim(1) != h.Value.Dim(1) {
		return nil, fmt.Errorf("nn: labels %v do not match the batch %v", labels.Shape(), h.Value.Shape()[:2])
	}
	H := h.Value.Dim(-1)
	return tp.LinearCrossEntropyRows(tp.Reshape(h, -1, H), m.LMHead.Weight, shiftLabels(tp, labels), IgnoreIndex, chunk, m.Config.FinalSoftcap)
}
