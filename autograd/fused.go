package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// RMSNorm normalises the last axis of x and scales by w (w may be nil).
func (tp *Tape) RMSNorm(x, w *Var, eps float64) *Var {
	var wv *tensor.Tensor
	if w != nil {
		wv = w.Value
	}
	xv := x.Value.Contiguous()
	y, inv := tensor.RMSNorm(xv, wv, eps)
	out := result(y)
	if !tp.needs(x, w) {
		release(inv) // kept only for a backward that will not run
		releaseCopy(x, xv)
		return out
	}
	// Its backward keeps x and w: the value can be had again (Forget).
	rebuildable(out, func() *tensor.Tensor {
		y, inv := tensor.RMSNorm(xv, wv, eps)
		release(inv) // the backward reads the forward's
		return y
	})
	tp.record(func() {
		g := out.Grad.Contiguous()
		be := g.Backend()
		var dx, dw *tensor.Tensor
		if x.requiresGrad {
			dx = tensor.New(be, xv.DType(), xv.Shape()...)
		}
		if w != nil && w.requiresGrad {
			dw = tensor.Zeros(be, wv.DType(), wv.Shape()...)
		}
		if err := be.RMSNormBackward(dx, dw, g, xv, wv, inv); err != nil {
			panic(&tensor.Error{Err: err})
		}
		tp.releaseSaved(inv)
		tp.accumulate(x, dx, true)
		if dw != nil {
			tp.accumulate(w, dw, true)
		}
	}, out)
	return out
}

// RoPE rotates x [B,T,H,D] by the angles whose cos/sin are [B,T,D/2]
// (constants: positions carry no gradient).
func (tp *Tape) RoPE(x *Var, cos, sin *tensor.Tensor) *Var {
	out := result(tensor.RoPE(x.Value, cos, sin, false))
	if !tp.needs(x) {
		return out
	}
	tp.record(func() { tp.accumulate(x, tensor.RoPE(out.Grad, cos, sin, true), true) }, out)
	return out
}

// SwiGLU returns silu(gate)·up as one node.
func (tp *Tape) SwiGLU(gate, up *Var) *Var {
	gv, uv := gate.Value.Contiguous(), up.Value.Contiguous()
	out := result(tensor.SwiGLU(gv, uv))
	if !tp.needs(gate, up) {
		releaseCopy(gate, gv)
		releaseCopy(up, uv)
		return out
	}
	// Its backward keeps gate and up: the value can be had again (Forget).
	rebuildable(out, func() *tensor.Tensor { return tensor.SwiGLU(gv, uv) })
	tp.record(func() {
		g := out.Grad.Contiguous()
		be := g.Backend()
		dg := tensor.New(be, gv.DType(), gv.Shape()...)
		du := tensor.New(be, uv.DType(), uv.Shape()...)
		if err := be.SwiGLUBackward(dg, du, g, gv, uv); err != nil {
			panic(&tensor.Error{Err: err})
		}
		tp.accumulate(gate, dg, true)
		tp.accumulate(up, du, true)
	}, out)
	return out
}

// GeGLU returns gelu_tanh(gate)·up as one node (Gemma's MLP activation,
// transformers' gelu_pytorch_tanh). The backend must implement
// tensor.GeGLUBackend.
func (tp *Tape) GeGLU(gate, up *Var) *Var {
	gv, uv := gate.Value.Contiguous(), up.Value.Contiguous()
	out := result(tensor.GeGLU(gv, uv))
	if !tp.needs(gate, up) {
		releaseCopy(gate, gv)
		releaseCopy(up, uv)
		return out
	}
	rebuildable(out, func() *tensor.Tensor { return tensor.GeGLU(gv, uv) })
	tp.record(func() {
		g := out.Grad.Contiguous()
		be, _ := g.Backend().(tensor.GeGLUBackend) // the forward succeeded, so it is one
		var dg, du *tensor.Tensor
		if gate.requiresGrad {
			dg = tensor.New(g.Backend(), gv.DType(), gv.Shape()...)
		}
		if up.requiresGrad {
			du = tensor.New(g.Backend(), uv.DType(), uv.Shape()...)
		}
		if err := be.GeGLUBackward(dg, du, g, gv, uv); err != nil {
			panic(&tensor.Error{Err: err})
		}
		if dg != nil {
			tp.accumulate(gate, dg, true)
		}
		if du != nil {
			tp.accumulate(up, du, true)
		}
	}, out)
	return out
}

// Embedding gathers rows of table for integer ids.
func (tp *Tape) Embedding(table *Var, ids *tensor.Tensor) *Var {
	out := result(tensor.Embedding(table.Value, ids))
	if !tp.needs(table) {
		return out
	}
	tp.record(func() {
		g := out.Grad.Contiguous()
		dt := tensor.Zeros(g.Backend(), g.DType(), table.Shape()...)
		if err := g.Backend().EmbeddingBackward(dt, g.Reshape(-1, table.Value.Dim(1)), ids.Contiguous()); err != nil {
			panic(&tensor.Error{Err: err})
		}
		tp.accumulate(table, dt, true)
	}, out)
	return out
}

// Attention is fused scaled dot-product attention (see tensor.AttentionParams).
// q [B,T,Hq,D], k, v [B,S,Hkv,D] → [B,T,Hq,D].
func (tp *Tape) Attention(q, k, v *Var, p tensor.AttentionParams) *Var {
	qv, kv, vv := q.Value.Contiguous(), k.Value.Contiguous(), v.Value.Contiguous()
	o, lse := tensor.Attention(qv, kv, vv, p)
	out := result(o)
	if !tp.needs(q, k, v) {
		release(lse) // kept only for a backward that will not run
		releaseCopy(q, qv)
		releaseCopy(k, kv)
		releaseCopy(v, vv)
		return out
	}
	tp.record(func() {
		g := out.Grad.Contiguous()
		be := g.Backend()
		dq := tensor.New(be, qv.DType(), qv.Shape()...)
		dk := tensor.New(be, kv.DType(), kv.Shape()...)
		dv := tensor.New(be, vv.DType(), vv.Shape()...)
		if err := be.AttentionBackward(dq, dk, dv, g, o, lse, qv, kv, vv, p); err != nil {
			panic(&tensor.Error{Err: err})
		}
		tp.releaseSaved(lse)
		tp.accumulate(q, dq, true)
		tp.accumulate(k, dk, true)
		tp.accumulate(v, dv, true)
	}, out)
	return out
}

// CrossEntropy returns the mean of −log softmax(logits)[label] over rows
// whose label is not ignoreIndex (transformers' reduction), as a scalar.
// The logit gradient is computed in the same pass and kept for the
// backward, so no softmax is stored separately. logits [N,V], labels [N].
func (tp *Tape) CrossEntropy(logits *Var, labels *tensor.Tensor, ignoreIndex int) (*Var, error) {
	n := countNotIgnored(labels, ignoreIndex)
	if n == 0 {
		return nil, fmt.Errorf("autograd: cross-entropy over a batch with no labelled token")
	}
	want := tp.needs(logits)
	rowLoss, dl := tensor.CrossEntropy(logits.Value, labels, ignoreIndex, float32(1/float64(n)), want)
	sum := tensor.SumAll(rowLoss)
	loss := result(tensor.Scale(sum, 1/float64(n)))
	release(rowLoss, sum) // read by nothing else: the backward reads dl
	if !want {
		return loss, nil
	}
	tp.record(func() {
		s := gradScalar(loss)
		if s != 1 {
			tensor.ScaleInPlace(dl, s)
		}
		tp.accumulate(logits, dl, true)
	}, loss)
	return loss, nil
}

func countNotIgnored(labels *tensor.Tensor, ignore int) int {
	n := 0
	for _, l := range labels.I64() {
		if int(l) != ignore {
			n++
		}
	}
	return n
}

// LossChunkRows is the default rows per chunk of the fused loss for a
// vocabulary of v: a chunk holds its float32 logits and their gradient,
// [rows, v] each, at the step's peak (the end of the forward), so rows are
// chosen to keep one of them within 64 MiB: 1024 rows up to a 16,384-token
// vocabulary, 341 for SmolLM2's 49,152 (2 × 64 instead of 2 × 192 MiB),
// 130 for Llama 3's 128,256 (instead of 2 × 501 MiB), and never under 128
// (a GEMM that thin would waste the device). The rows of a chunk are
// independent, so the chunking changes only the order of the loss's sum.
func LossChunkRows(v int) int {
	return min(1024, max(128, (64<<20)/4/max(v, 1)))
}

// LinearCrossEntropy is the fused language-model head: the mean
// cross-entropy of softmax(h·wᵀ) against labels, computed over chunks of
// rows so the [N,V] logits never exist at once. Each chunk's logit gradient
// is turned into dh (and dw) right away and only those are kept for the
// backward (the Liger/Unsloth approach). h [N,H], w [V,H], labels [N].
// chunk is the rows per chunk (0: LossChunkRows of the vocabulary).
func (tp *Tape) LinearCrossEntropy(h, w *Var, labels *tensor.Tensor, ignoreIndex, chunk int) (*Var, error) {
	return tp.LinearSoftcapCrossEntropy(h, w, labels, ignoreIndex, chunk, 0)
}

// LinearSoftcapCrossEntropy is LinearCrossEntropy on soft-capped logits
// c·tanh(h·wᵀ/c) (Gemma 2's final_logit_softcapping; c = 0: none). The cap
// is applied to each chunk in place and its derivative folded into the
// chunk's logit gradient, so it costs no extra [chunk,V] buffer.
func (tp *Tape) LinearSoftcapCrossEntropy(h, w *Var, labels *tensor.Tensor, ignoreIndex, chunk int, softcap float64) (*Var, error) {
	n := countNotIgnored(labels, ignoreIndex)
	if n == 0 {
		return nil, fmt.Errorf("autograd: cross-entropy over a batch with no labelled token")
	}
	if chunk <= 0 {
		chunk = LossChunkRows(w.Value.Dim(0))
	}
	hv := h.Value.Contiguous()
	wantH, wantW := tp.needs(h), tp.needs(w)
	be := hv.Backend()
	// Logits, the loss and the head's gradient in float32 when h is bf16
	// (bf16 activations): the softmax and its sum need the range and the
	// digits, as under autocast.
	acc := hv.DType()
	if acc == tensor.BF16 {
		acc = tensor.F32
	}
	var dh, dw *tensor.Tensor
	if wantH {
		dh = tensor.New(be, hv.DType(), hv.Shape()...)
	}
	if wantW {
		dw = tensor.Zeros(be, acc, w.Value.Shape()...)
	}
	total := tensor.Zeros(be, acc)
	scale := float32(1 / float64(n))
	headChunks(hv, w.Value, labels, ignoreIndex, chunk, softcap, acc, scale, dh, dw, func(rowLoss *tensor.Tensor, _, _ int) {
		chunkLoss := tensor.SumAll(rowLoss)
		tensor.AddInPlace(total, chunkLoss)
		release(chunkLoss)
	})
	loss := result(tensor.Scale(total, float64(scale)))
	release(total)
	if !wantH && !wantW {
		return loss, nil
	}
	tp.record(func() {
		s := gradScalar(loss)
		if dh != nil {
			if s != 1 {
				tensor.ScaleInPlace(dh, s)
			}
			tp.accumulate(h, dh, true)
		}
		if dw != nil {
			if s != 1 {
				tensor.ScaleInPlace(dw, s)
			}
			tp.accumulate(w, dw, true)
		}
	}, loss)
	return loss, nil
}

// headChunks runs the LM head and the cross-entropy over chunks of rows:
// each chunk's logits h·wᵀ (soft-capped when softcap ≠ 0) in acc, their
// per-row losses handed to rowLosses with the chunk's first and end row,
// and, when dh or dw is given, scale·d loss/d logits turned into dh (=, the
// chunk's rows) and dw (+=) right away. Each chunk's [rows, vocab] logits
// and gradient are released before the next: no more than one chunk's
// exist at once.
func headChunks(hv, w, labels *tensor.Tensor, ignoreIndex, chunk int, softcap float64, acc tensor.DType, scale float32, dh, dw *tensor.Tensor, rowLosses func(rowLoss *tensor.Tensor, first, end int)) {
	be := hv.Backend()
	N, V := hv.Dim(0), w.Dim(0)
	for s := 0; s < N; s += chunk {
		e := min(N, s+chunk)
		hc := hv.Narrow(0, s, e-s)
		lab := labels.Narrow(0, s, e-s)
		logits := tensor.New(be, acc, e-s, V)
		tensor.MatMulInto(logits, hc, w, false, true, 1, 0)
		if softcap != 0 {
			tensor.SoftcapInPlace(logits, softcap)
		}
		rowLoss, dl := tensor.CrossEntropy(logits, lab, ignoreIndex, scale, dh != nil || dw != nil)
		if softcap != 0 && dl != nil {
			tensor.SoftcapBackwardInPlace(dl, logits, softcap)
		}
		rowLosses(rowLoss, s, e)
		if dh != nil {
			tensor.MatMulInto(dh.Narrow(0, s, e-s), dl, w, false, false, 1, 0)
		}
		if dw != nil {
			tensor.MatMulInto(dw, dl, hc, true, false, 1, 1)
		}
		// The chunk's logits and their gradient, [chunk, vocab] each, are
		// dead: back to the device's allocator now, not after a collection
		// (on a GPU they were 2 × 192 MiB a chunk at SmolLM2's vocabulary).
		release(logits, dl, rowLoss)
	}
}

// LoRALinear is a frozen linear with a low-rank adapter as one node:
// y = x·wᵀ + bias + scale·((x⊙mask)·aᵀ)·bᵀ, with w [out,in], a [r,in],
// b [out,r] and an optional dropout mask (already scaled by 1/(1−p)) on
// the adapter's input. The backward is hand-derived: with h = (x⊙mask)·aᵀ
// and g the output gradient, db = scale·gᵀ·h, dh = scale·g·b,
// da = dhᵀ·(x⊙mask), dx = g·w + (dh·a)⊙mask. Only x and h [N,r] are kept;
// w + scale·b·a is never formed.
//
// drop (nil: none) is the mask's stream (tensor.DropoutStream: the same
// mask over x's elements on every draw). It is drawn in the forward and
// again in the backward, so neither the mask nor x⊙mask is held between
// them: two [N,in] buffers per adapted linear that would otherwise outlive
// the forward. Each product that reads x⊙mask takes the stream instead
// (tensor.MatMulDropoutA for h, tensor.MatMulTDropoutB for da,
// tensor.MatMulLowRankInto for dx), and on the GPU applies the mask inside
// the GEMM: x⊙mask never exists there.
func (tp *Tape) LoRALinear(x, w, bias, a, b *Var, scale float64, drop *tensor.DropoutStream) *Var {
	xv := x.Value.Contiguous()
	// With bf16 activations every product rounds the float32 adapter
	// weights to bf16 first (autocast's cast; the GPU backend launches a
	// cast for each). Rounded once here, for the forward's two products and
	// the backward's two, the products see the same bits and a call makes
	// two casts instead of four.
	av, bv := a.Value, b.Value
	if xv.DType() == tensor.BF16 {
		av, bv = av.To(tensor.BF16), bv.To(tensor.BF16)
	}
	casts := func() {
		if av != a.Value {
			release(av)
		}
		if bv != b.Value {
			release(bv)
		}
	}
	var h *tensor.Tensor
	if drop == nil {
		h = tensor.MatMul(xv, av, false, true)
	} else {
		// (x⊙mask)·Aᵀ: the mask applied inside the product where the
		// backend can (no dropped-out copy of x), else on a temporary.
		h = tensor.MatMulDropoutA(xv.Reshape(-1, xv.Dim(-1)), av, drop)
	}
	// y = x·Wᵀ + s·h·Bᵀ: one fused GEMM where the backend has it (the CUDA
	// backend in bf16 mode writes y once), else the two products.
	n := w.Value.Dim(0)
	y := tensor.New(xv.Backend(), xv.DType(), append(xv.Shape()[:xv.Rank()-1].Clone(), n)...)
	tensor.MatMulLowRankInto(y.Reshape(-1, n), xv.Reshape(-1, xv.Dim(-1)), w.Value, h.Reshape(-1, h.Dim(-1)), bv, true, scale, 0, nil)
	if bias != nil {
		tensor.AddInPlace(y, bias.Value)
	}
	out := result(y)
	if !tp.needs(x, w, bias, a, b) {
		release(h) // x·Aᵀ, kept only for a backward that will not run
		casts()
		releaseCopy(x, xv)
		return out
	}
	// The backward reads x again (for dA and dW) instead of holding the
	// tensor: x may be forgotten and computed again (Forget). A strided
	// x was copied above, and that copy is what the backward must read.
	if x.Value.IsContiguous() {
		readsLazily(x)
		xv = nil
	}
	input := func() *tensor.Tensor {
		if xv != nil {
			return xv
		}
		return x.valueForBackward()
	}
	xShape := x.Shape().Clone()
	tp.record(func() {
		g := out.Grad.Contiguous()
		g2 := g.Reshape(-1, g.Dim(-1))
		h2 := h.Reshape(-1, h.Dim(-1))
		be := g.Backend()
		// The LoRA scale rides on the GEMMs' alpha and dx's two terms share
		// one output (beta = 1): no separate scaling or addition passes.
		if b.requiresGrad {
			// db = scale·gᵀ·h computed as (scale·hᵀ·g)ᵀ: the big g is then
			// the GEMM's B operand, read row by row, instead of a transposed
			// A operand (1.6x faster for g 2048×704, r = 16, on AVX-512).
			dbT := tensor.New(be, g.DType(), h2.Dim(1), g2.Dim(1))
			tensor.MatMulInto(dbT, h2, g2, true, false, scale, 0)
			// Transposed and, for a float32 master, widened in one copy
			// (accumulate would widen the transposed copy again).
			db := dbT.Transpose(0, 1)
			if dt := b.dtype(); dt != db.DType() && dt != tensor.BF16 {
				db = db.To(dt)
			} else {
				db = db.Contiguous()
			}
			tp.accumulate(b, db, true)
			release(dbT) // its transposed copy went on
		}
		var dh *tensor.Tensor
		if a.requiresGrad || x.requiresGrad {
			dh = tensor.New(be, g.DType(), h2.Shape()...)
			tensor.MatMulInto(dh, g2, bv, false, false, scale, 0)
		}
		if a.requiresGrad {
			// dA = dhᵀ·(x⊙mask): the mask applied inside the product where
			// the backend can (no dropped-out copy of x), else on a
			// temporary.
			xi := input()
			x2 := xi.Reshape(-1, xi.Dim(-1))
			if drop == nil {
				tp.accumulate(a, tensor.MatMul(dh, x2, true, false), true)
			} else {
				tp.accumulate(a, tensor.MatMulTDropoutB(dh, x2, drop), true)
			}
		}
		if x.requiresGrad {
			// When x already has a gradient (q, k and v share their input;
			// so do gate and up), both terms go straight into it (beta = 1):
			// no [N,in] buffer and no addition pass.
			dx, into := x.Grad, true
			if dx == nil || x.leaf || !dx.IsContiguous() || dx.DType() != g.DType() {
				into = false
			}
			// dx (+)= g·W + mask ⊙ (dh·A): one fused GEMM where the
			// backend has it (see the forward), the mask applied to the
			// low-rank product inside it; else the products apart.
			beta := 1.0
			if !into {
				dx, beta = tensor.New(be, g.DType(), xShape...), 0
			}
			tensor.MatMulLowRankInto(dx.Reshape(-1, dx.Dim(-1)), g2, w.Value, dh, av, false, 1, beta, drop)
			if !into {
				tp.accumulate(x, dx, true)
			}
		}
		if w.requiresGrad {
			xw := input()
			tp.accumulate(w, tensor.MatMul(g2, xw.Reshape(-1, xw.Dim(-1)), true, false), true)
		}
		if bias != nil && bias.requiresGrad {
			tp.accumulate(bias, tensor.SumTo(g, bias.Value.Shape()), false)
		}
		release(dh)
		tp.releaseSaved(h)
		if av != a.Value {
			tp.releaseSaved(av)
		}
		if bv != b.Value {
			tp.releaseSaved(bv)
		}
	}, out)
	return out
}

// releaseCopy gives back c when it is a contiguous copy an op made of v's
// value (for a forward whose backward will not run: a recorded one
// captures it).
func releaseCopy(v *Var, c *tensor.Tensor) {
	if c != v.Value {
		release(c)
	}
}

// releaseSaved gives back, at the end of a node's backward, what its
// forward made for that backward alone (a norm's inverse RMS, attention's
// log-sum-exp, LoRA's x·Aᵀ), as the tape releases the node's outputs
// (ReleaseActivations: each node's backward runs once).
func (tp *Tape) releaseSaved(ts ...*tensor.Tensor) {
	if tp.ReleaseActivations {
		release(ts...)
	}
}

// release gives temporaries a node made and no longer reads back to their
// backend now (tensor.Release: a GPU's allocator, the CPU's pool).
func release(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if err := tensor.Release(t); err != nil {
			panic(&tensor.Error{Err: fmt.Errorf("autograd: %w", err)})
		}
	}
}
