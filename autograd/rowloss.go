package autograd

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/tensor"
)

// LinearCrossEntropyRows is the fused language-model head without the mean:
// row i's −log softmax(h·wᵀ)[labels[i]] (0 where the label is ignoreIndex),
// [N] in float32 (the dtype of h when that is float32 or float64), for
// losses that weigh rows by what the forward computes: preference
// optimisation sums each sequence's rows into its log-likelihood.
// softcap as in LinearSoftcapCrossEntropy; chunk as in LinearCrossEntropy.
//
// Each row's gradient dl·w is computed in the forward, unscaled (as the mean
// loss computes it, scaled), and the backward multiplies row i by the
// upstream gradient of row i: the head runs once, as for the mean loss. The
// head's own gradient sums over rows (dlᵀ·h), which would need the logits
// again, so a trainable w is refused: preference training through a
// trained lm_head (modules_to_save) is not offered.
func (tp *Tape) LinearCrossEntropyRows(h, w *Var, labels *tensor.Tensor, ignoreIndex, chunk int, softcap float64) (*Var, error) {
	if w.requiresGrad {
		return nil, fmt.Errorf("autograd: per-row cross-entropy through a trainable LM head (%s): its gradient is not offered", w.Name)
	}
	if chunk <= 0 {
		chunk = LossChunkRows(w.Value.Dim(0))
	}
	hv := h.Value.Contiguous()
	N := hv.Dim(0)
	if labels.Numel() != N {
		return nil, fmt.Errorf("autograd: %d labels for %d rows", labels.Numel(), N)
	}
	wantH := tp.needs(h)
	be := hv.Backend()
	acc := hv.DType()
	if acc == tensor.BF16 {
		acc = tensor.F32
	}
	var dh *tensor.Tensor
	if wantH {
		dh = tensor.New(be, hv.DType(), hv.Shape()...)
	}
	rows := tensor.New(be, acc, N)
	headChunks(hv, w.Value, labels, ignoreIndex, chunk, softcap, acc, 1, dh, nil, func(rowLoss *tensor.Tensor, first, end int) {
		rows.Narrow(0, first, end-first).CopyFrom(rowLoss)
	})
	out := result(rows)
	if !wantH {
		return out, nil
	}
	tp.record(func() {
		g := out.Grad.Contiguous()
		if g.DType() != dh.DType() {
			g = g.To(dh.DType())
		}
		col := g.Reshape(N, 1)
		check(be.Binary(tensor.OpMul, dh, dh, col.Expand(dh.Shape())))
		if g != out.Grad {
			release(g)
		}
		tp.accumulate(h, dh, true)
	}, out)
	return out, nil
}

// HostLoss is a scalar loss computed on the host from a small vector x
// (per-sequence log-likelihoods, a few per row of a batch): f receives x's
// values and returns the loss and d loss/d x. x is read back once (on a GPU
// that waits for the work queued before it); the backward sends the
// gradient up as one small tensor. f's gradient must be finite and have
// x's length.
func (tp *Tape) HostLoss(x *Var, f func(x []float64) (loss float64, grad []float64, err error)) (*Var, error) {
	xv := x.Value
	var host []float64
	dt := tensor.F32 // the loss's and the gradient's dtype
	if xv.DType() == tensor.F64 {
		host, dt = xv.F64(), tensor.F64
	} else {
		for _, v := range xv.F32() {
			host = append(host, float64(v))
		}
	}
	loss, grad, err := f(host)
	if err != nil {
		return nil, err
	}
	if len(grad) != len(host) {
		return nil, fmt.Errorf("autograd: host loss gave %d gradients for %d values", len(grad), len(host))
	}
	for i, g := range grad {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return nil, fmt.Errorf("autograd: host loss gradient %d is %v", i, g)
		}
	}
	be := xv.Backend()
	out := result(tensor.Scalar(be, dt, loss))
	if !tp.needs(x) {
		return out, nil
	}
	tp.record(func() {
		s := gradScalar(out)
		var dx *tensor.Tensor
		if dt == tensor.F64 {
			scaled := make([]float64, len(grad))
			for i, g := range grad {
				scaled[i] = s * g
			}
			dx = tensor.FromHost(be, dt, scaled, xv.Shape()...)
		} else {
			scaled := make([]float32, len(grad))
			for i, g := range grad {
				scaled[i] = float32(s * g)
			}
			dx = tensor.FromHost(be, dt, scaled, xv.Shape()...)
		}
		tp.accumulate(x, dx, true)
	}, out)
	return out, nil
}

// check panics with a tensor.Error as the tape's ops do for a backend
// failure (Backward recovers it into an error).
func check(err error) {
	if err != nil {
		panic(&tensor.Error{Err: err})
	}
}
