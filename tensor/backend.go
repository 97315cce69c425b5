package tensor

import "errors"

// ErrUnsupported is wrapped by a backend's error for an op or dtype it does
// not implement (the CUDA backend's list is in its README). Nothing falls
// back to another implementation: the error reaches the caller (tensor's op
// functions panic with it as *Error, see Catch), which names the backend and
// the op, so a run that cannot go on refuses with the reason.
var ErrUnsupported = errors.New("tensor: op not supported by this backend")

// Backend executes ops for tensors whose storage it owns. Every method takes
// preallocated outputs (contiguous unless said otherwise) and returns an
// error instead of panicking. Gradient outputs documented as "+=" accumulate;
// all others overwrite. The shape rules below are checked by the Check
// functions of check.go, which every backend calls first, so a call that
// breaks them gets the same error on every device.
type Backend interface {
	Name() string
	Device() Device

	// Memory.
	Alloc(dt DType, n int) (Storage, error)
	FromHost(dt DType, data any) (Storage, error)
	ToHost(src *Tensor, dst any) error // src contiguous; dst a slice of src's host type
	Copy(dst, src *Tensor) error       // any strides on both; dtype converted
	Fill(dst *Tensor, v float64) error // any strides

	// MatMul: dst = alpha·op(a)·op(b) + beta·dst over the last two axes;
	// leading axes are batch axes (b may be rank 2 and shared by every
	// batch). a, dst are float; b may be BF16 (frozen weights).
	MatMul(dst, a, b *Tensor, transA, transB bool, alpha, beta float64) error

	// Elementwise: a and b are views already broadcast to dst's shape
	// (stride 0 on broadcast axes).
	Binary(op BinaryOp, dst, a, b *Tensor) error
	Unary(op UnaryOp, dst, a *Tensor, arg float64) error
	// Reduce over one axis; dst has a's shape with that axis set to 1.
	Reduce(op ReduceOp, dst, a *Tensor, axis int) error
	// Softmax (or log-softmax) over the last axis.
	Softmax(dst, a *Tensor, log bool) error

	// Fused ops of Llama training; shapes follow the parameter structs.
	Fused
}

// Fused holds the ops of a Llama training step that every backend
// implements as single kernels. Their composite (unfused) formulas, written
// with the elementwise ops and reductions, live in tensor/backendtest, which
// checks each backend's fused ops against them in float64.
type Fused interface {
	// RMSNorm: x [N,D], w [D] (or nil), dst [N,D], invRMS [N] (F32/F64).
	RMSNorm(dst, invRMS, x, w *Tensor, eps float64) error
	// RMSNormBackward: dx = (=), dw (+=, may be nil).
	RMSNormBackward(dx, dw, dy, x, w, invRMS *Tensor) error
	// RoPE: x [B,T,H,D] rotated in rotate-half layout with cos, sin [B,T,D/2]:
	// x1' = x1·c − x2·s, x2' = x2·c + x1·s (inverse: s → −s, the backward).
	RoPE(dst, x, cos, sin *Tensor, inverse bool) error
	// SwiGLU: dst = silu(gate)·up, all [N,F].
	SwiGLU(dst, gate, up *Tensor) error
	// SwiGLUBackward: dgate, dup (=).
	SwiGLUBackward(dgate, dup, dy, gate, up *Tensor) error
	// Embedding: table [V,D] (F32/BF16), ids [N] I32/I64, dst [N,D].
	Embedding(dst, table, ids *Tensor) error
	// EmbeddingBackward: dtable (+=) [V,D], dy [N,D].
	EmbeddingBackward(dtable, dy, ids *Tensor) error
	// Attention: q [B,T,Hq,D], k, v [B,S,Hkv,D], out [B,T,Hq,D], lse [B,Hq,T]
	// (log-sum-exp of each score row, for the backward).
	Attention(out, lse, q, k, v *Tensor, p AttentionParams) error
	// AttentionBackward: dq, dk, dv (=).
	AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v *Tensor, p AttentionParams) error
	// CrossEntropy over rows of logits [N,V] with labels [N] (I32/I64):
	// loss[i] = logsumexp(row) − row[label] (0 for ignored rows); when
	// dlogits is not nil it receives scale·d loss[i]/d logits (= ; zero rows
	// for ignored labels).
	CrossEntropy(loss, dlogits, logits, labels *Tensor, ignoreIndex int, scale float32) error
}

// AttentionParams describe masking and scaling of scaled dot-product
// attention. Query t may see key s when s ≤ t + QueryOffset (causal), the
// key is not padding (KeyMask[b,s] != 0), both are in the same document
// (Segments equal) and, with a window W > 0, t + QueryOffset − s < W.
// With Softcap c > 0 each score s = Scale·q·k becomes c·tanh(s/c) before
// masking and softmax (Gemma 2's attn_logit_softcapping).
type AttentionParams struct {
	Scale       float32
	Softcap     float32 // tanh soft-cap of the scores; 0 = none
	Causal      bool
	QueryOffset int     // position of query 0 among the keys (KV cache)
	Window      int     // sliding window; 0 = none
	KeyMask     *Tensor // [B,S] I32/I64/F32, nonzero = attend; nil = all
	Segments    *Tensor // [B,S] document ids for packed rows (queries use the last T); nil = one document
}

// BinaryOp names an elementwise binary op.
type BinaryOp uint8

const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
	OpMax
	OpEq // 1 where equal, else 0
)

// UnaryOp names an elementwise unary op; arg is its parameter where it has one.
type UnaryOp uint8

const (
	OpNeg      UnaryOp = iota
	OpExp              // e^x
	OpLog              // ln x
	OpSilu             // x·σ(x)
	OpSiluGrad         // d silu / dx
	OpSqrt
	OpRecip // 1/x
	OpScale // arg·x
	OpAddC  // x + arg
	OpPowC  // x^arg
	OpSigmoid
	OpTanh
	OpSquare
	OpAbs
	OpCos
	OpSin
)

// ReduceOp names a reduction.
type ReduceOp uint8

const (
	OpSum ReduceOp = iota
	OpMean
	OpMaxR
)
