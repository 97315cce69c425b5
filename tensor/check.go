package tensor

import (
	"errors"
	"fmt"
)

// The shape rules of the Backend contract, written once. Every backend calls
// the Check function of an op before it reads or writes memory, so a call
// that breaks the contract gets the same error on every device (the backend
// prefixes its name: "cpu: MatMul ..." or "cuda: MatMul ..."). Dtype rules
// stay with each backend: they differ by design (the CPU computes in F32 or
// F64, the CUDA backend's fused kernels in F32 only).

// CheckContiguous reports the first non-nil operand that is a strided view
// (the fused ops take contiguous operands only).
func CheckContiguous(ts ...*Tensor) error {
	for _, t := range ts {
		if t != nil && !t.IsContiguous() {
			// Dtype, shape and strides, not the tensor's String: that names
			// the device, and the error must read the same on every backend.
			return fmt.Errorf("fused op needs contiguous operands, got a %v %v view with strides %v", t.DType(), t.Shape(), t.Strides())
		}
	}
	return nil
}

// Rows returns (rows, width) of t seen as [N, last axis]: (1, 1) for a
// scalar and (0, 0) when the last axis is empty.
func Rows(t *Tensor) (n, width int) {
	if t.Rank() == 0 {
		return 1, 1
	}
	d := t.Dim(-1)
	if d == 0 {
		return 0, 0
	}
	return t.Numel() / d, d
}

func shapeOf(t *Tensor) Shape {
	if t == nil {
		return nil
	}
	return t.shape
}

// MatMulDims are the GEMM sizes of a valid MatMul: Batch products of an
// M×K by a K×N matrix, with the leading dimensions of the row-major
// operands; SharedB when b is rank 2 and serves every batch.
type MatMulDims struct {
	Batch, M, N, K int
	LDA, LDB, LDC  int
	SharedB        bool
}

// CheckMatMul checks dst = op(a)·op(b) over the last two axes (see
// Backend.MatMul). An NF4 b must be a whole rank-2 weight.
func CheckMatMul(dst, a, b *Tensor, transA, transB bool) (MatMulDims, error) {
	if !dst.IsContiguous() || !a.IsContiguous() || !b.IsContiguous() {
		return MatMulDims{}, errors.New("MatMul needs contiguous operands")
	}
	if a.Rank() < 2 || b.Rank() < 2 || dst.Rank() != a.Rank() {
		return MatMulDims{}, fmt.Errorf("MatMul ranks %d, %d -> %d", a.Rank(), b.Rank(), dst.Rank())
	}
	if b.dtype == NF4 && (b.Rank() != 2 || b.offset != 0) {
		return MatMulDims{}, errors.New("NF4 operand must be a whole rank-2 weight")
	}
	r, rb := a.Rank(), b.Rank()
	m, k := a.shape[r-2], a.shape[r-1]
	if transA {
		m, k = k, m
	}
	kb, n := b.shape[rb-2], b.shape[rb-1]
	if transB {
		kb, n = n, kb
	}
	if kb != k || dst.shape[r-2] != m || dst.shape[r-1] != n {
		return MatMulDims{}, fmt.Errorf("MatMul %v·%v (transA=%v transB=%v) -> %v", a.shape, b.shape, transA, transB, dst.shape)
	}
	if !a.shape[:r-2].Equal(dst.shape[:r-2]) {
		return MatMulDims{}, fmt.Errorf("MatMul batch dims %v vs %v", a.shape, dst.shape)
	}
	shared := rb == 2
	if !shared && !b.shape[:rb-2].Equal(a.shape[:r-2]) {
		return MatMulDims{}, fmt.Errorf("MatMul batch dims %v vs %v", a.shape, b.shape)
	}
	return MatMulDims{Batch: a.shape[:r-2].Numel(), M: m, N: n, K: k,
		LDA: a.shape[r-1], LDB: b.shape[rb-1], LDC: n, SharedB: shared}, nil
}

// CheckBinary checks that a and b are already broadcast to dst's shape.
func CheckBinary(dst, a, b *Tensor) error {
	if !a.shape.Equal(dst.shape) || !b.shape.Equal(dst.shape) {
		return fmt.Errorf("Binary shapes %v %v -> %v", a.shape, b.shape, dst.shape)
	}
	return nil
}

// CheckUnary checks that dst has a's shape.
func CheckUnary(dst, a *Tensor) error {
	if !a.shape.Equal(dst.shape) {
		return fmt.Errorf("Unary shape %v -> %v", a.shape, dst.shape)
	}
	return nil
}

// CheckReduce checks a reduction of a over axis (negative counts from the
// end) into dst, which has a's shape with that axis set to 1; it returns
// the axis in [0, rank).
func CheckReduce(dst, a *Tensor, axis int) (int, error) {
	ax := axis
	if ax < 0 {
		ax += a.Rank()
	}
	if ax < 0 || ax >= a.Rank() {
		return 0, fmt.Errorf("Reduce axis %d out of range for rank %d", axis, a.Rank())
	}
	want := a.shape.Clone()
	want[ax] = 1
	if !dst.shape.Equal(want) {
		return 0, fmt.Errorf("Reduce %v over axis %d into %v", a.shape, ax, dst.shape)
	}
	return ax, nil
}

// CheckSoftmax checks contiguous operands of equal shape.
func CheckSoftmax(dst, a *Tensor) error {
	if !dst.IsContiguous() || !a.IsContiguous() || !a.shape.Equal(dst.shape) {
		return fmt.Errorf("Softmax needs contiguous equal shapes (%v, %v)", a.shape, dst.shape)
	}
	return nil
}

// CheckRMSNorm checks x [N,D], w [D] or nil, dst like x, invRMS [N].
func CheckRMSNorm(dst, invRMS, x, w *Tensor) error {
	if err := CheckContiguous(dst, invRMS, x, w); err != nil {
		return err
	}
	n, d := Rows(x)
	if dst.Numel() != x.Numel() || invRMS.Numel() != n || (w != nil && w.Numel() != d) {
		return fmt.Errorf("RMSNorm x %v w %v dst %v invRMS %v", x.shape, shapeOf(w), dst.shape, invRMS.shape)
	}
	return nil
}

// CheckRMSNormBackward checks the gradients of RMSNorm; dx and dw may be nil.
func CheckRMSNormBackward(dx, dw, dy, x, w, invRMS *Tensor) error {
	if err := CheckContiguous(dx, dw, dy, x, w, invRMS); err != nil {
		return err
	}
	n, d := Rows(x)
	if dy.Numel() != x.Numel() || invRMS.Numel() != n || (dx != nil && dx.Numel() != x.Numel()) ||
		(w != nil && w.Numel() != d) || (dw != nil && dw.Numel() != d) {
		return fmt.Errorf("RMSNormBackward x %v dy %v dx %v dw %v invRMS %v", x.shape, dy.shape, shapeOf(dx), shapeOf(dw), invRMS.shape)
	}
	return nil
}

// CheckRoPE checks x and dst [B,T,H,D] with cos and sin [B,T,D/2].
func CheckRoPE(dst, x, cos, sin *Tensor) error {
	if err := CheckContiguous(dst, x, cos, sin); err != nil {
		return err
	}
	xs, cs := x.shape, cos.shape
	if x.Rank() != 4 || cos.Rank() != 3 || !cs.Equal(sin.shape) || cs[0] != xs[0] || cs[1] != xs[1] || 2*cs[2] != xs[3] || !dst.shape.Equal(xs) {
		return fmt.Errorf("RoPE x %v with cos %v sin %v into %v (want [B,T,H,D] and [B,T,D/2])", xs, cs, sin.shape, dst.shape)
	}
	return nil
}

// CheckSwiGLU checks gate, up and dst of one size.
func CheckSwiGLU(dst, gate, up *Tensor) error {
	if err := CheckContiguous(dst, gate, up); err != nil {
		return err
	}
	if gate.Numel() != dst.Numel() || up.Numel() != dst.Numel() {
		return fmt.Errorf("SwiGLU gate %v up %v -> %v", gate.shape, up.shape, dst.shape)
	}
	return nil
}

// CheckSwiGLUBackward checks the gradients of SwiGLU; dgate and dup may be
// nil.
func CheckSwiGLUBackward(dgate, dup, dy, gate, up *Tensor) error {
	if err := CheckContiguous(dgate, dup, dy, gate, up); err != nil {
		return err
	}
	n := dy.Numel()
	if gate.Numel() != n || up.Numel() != n || (dgate != nil && dgate.Numel() != n) || (dup != nil && dup.Numel() != n) {
		return fmt.Errorf("SwiGLUBackward dy %v gate %v up %v", dy.shape, gate.shape, up.shape)
	}
	return nil
}

// CheckIDs checks token ids or labels: contiguous I32 or I64.
func CheckIDs(op string, ids *Tensor) error {
	if !ids.IsContiguous() {
		return fmt.Errorf("%s: ids must be contiguous", op)
	}
	if ids.dtype != I32 && ids.dtype != I64 {
		return fmt.Errorf("%s: ids of dtype %v (I32 or I64 expected)", op, ids.dtype)
	}
	return nil
}

// CheckEmbedding checks table [V,D], ids [N] and dst [N,D]; it returns V
// and D. Whether each id is below V is the backend's to check, with the
// values at hand.
func CheckEmbedding(dst, table, ids *Tensor) (V, D int, err error) {
	if err := CheckContiguous(dst, table); err != nil {
		return 0, 0, err
	}
	if err := CheckIDs("Embedding", ids); err != nil {
		return 0, 0, err
	}
	if table.Rank() != 2 {
		return 0, 0, fmt.Errorf("Embedding table %v (want [V,D])", table.shape)
	}
	V, D = table.Dim(0), table.Dim(1)
	if dst.Numel() != ids.Numel()*D {
		return 0, 0, fmt.Errorf("Embedding of %d ids into %v", ids.Numel(), dst.shape)
	}
	return V, D, nil
}

// CheckEmbeddingBackward checks dtable [V,D], dy [N,D] and ids [N]; it
// returns V and D.
func CheckEmbeddingBackward(dtable, dy, ids *Tensor) (V, D int, err error) {
	if err := CheckContiguous(dtable, dy); err != nil {
		return 0, 0, err
	}
	if err := CheckIDs("EmbeddingBackward", ids); err != nil {
		return 0, 0, err
	}
	if dtable.Rank() != 2 {
		return 0, 0, fmt.Errorf("EmbeddingBackward dtable %v (want [V,D])", dtable.shape)
	}
	V, D = dtable.Dim(0), dtable.Dim(1)
	if dy.Numel() != ids.Numel()*D {
		return 0, 0, fmt.Errorf("EmbeddingBackward dy %v for %d ids of width %d", dy.shape, ids.Numel(), D)
	}
	return V, D, nil
}

// CheckCrossEntropy checks logits [N,V], labels [N], loss [N] and dlogits
// like logits or nil; it returns N and V.
func CheckCrossEntropy(loss, dlogits, logits, labels *Tensor) (N, V int, err error) {
	if err := CheckContiguous(loss, dlogits, logits); err != nil {
		return 0, 0, err
	}
	if err := CheckIDs("CrossEntropy", labels); err != nil {
		return 0, 0, err
	}
	N, V = Rows(logits)
	if labels.Numel() != N || loss.Numel() != N || (dlogits != nil && dlogits.Numel() != logits.Numel()) {
		return 0, 0, fmt.Errorf("CrossEntropy logits %v labels %v loss %v", logits.shape, labels.shape, loss.shape)
	}
	return N, V, nil
}

// AttentionDims are the sizes of a valid attention call: q [B,T,Hq,D],
// k and v [B,S,Hkv,D].
type AttentionDims struct{ B, T, S, Hq, Hkv, D int }

// Group is the number of query heads that share one KV head.
func (d AttentionDims) Group() int { return d.Hq / d.Hkv }

// CheckAttention checks the operands of Backend.Attention and the masks of p.
func CheckAttention(out, lse, q, k, v *Tensor, p AttentionParams) (AttentionDims, error) {
	if out == nil || lse == nil {
		return AttentionDims{}, errors.New("attention needs out and lse")
	}
	if err := CheckContiguous(out, lse, q, k, v); err != nil {
		return AttentionDims{}, err
	}
	if q.Rank() != 4 || k.Rank() != 4 || v.Rank() != 4 {
		return AttentionDims{}, fmt.Errorf("attention wants [B,T,H,D] operands, got q %v k %v v %v", q.shape, k.shape, v.shape)
	}
	d := AttentionDims{B: q.Dim(0), T: q.Dim(1), Hq: q.Dim(2), D: q.Dim(3), S: k.Dim(1), Hkv: k.Dim(2)}
	if !k.shape.Equal(v.shape) || k.Dim(0) != d.B || k.Dim(3) != d.D || d.Hkv == 0 || d.Hq%d.Hkv != 0 {
		return d, fmt.Errorf("attention shapes q %v k %v v %v (query heads must be a multiple of KV heads)", q.shape, k.shape, v.shape)
	}
	if !out.shape.Equal(q.shape) || lse.Numel() != d.B*d.Hq*d.T {
		return d, fmt.Errorf("attention out %v lse %v for q %v", shapeOf(out), shapeOf(lse), q.shape)
	}
	if p.KeyMask != nil && p.KeyMask.Numel() != d.B*d.S {
		return d, fmt.Errorf("attention key mask %v for B=%d S=%d", p.KeyMask.shape, d.B, d.S)
	}
	if p.Segments != nil {
		if p.Segments.Numel() != d.B*d.S {
			return d, fmt.Errorf("attention segments %v for B=%d S=%d", p.Segments.shape, d.B, d.S)
		}
		// Queries take the document ids of the last T keys.
		if d.S < d.T {
			return d, fmt.Errorf("attention segments need S >= T (S=%d T=%d)", d.S, d.T)
		}
	}
	return d, nil
}

// CheckAttentionBackward checks the operands of Backend.AttentionBackward.
func CheckAttentionBackward(dq, dk, dv, dout, out, lse, q, k, v *Tensor, p AttentionParams) (AttentionDims, error) {
	if dq == nil || dk == nil || dv == nil || dout == nil {
		return AttentionDims{}, errors.New("AttentionBackward needs dout, dq, dk and dv")
	}
	if err := CheckContiguous(dq, dk, dv, dout); err != nil {
		return AttentionDims{}, err
	}
	d, err := CheckAttention(out, lse, q, k, v, p)
	if err != nil {
		return d, err
	}
	if !dq.shape.Equal(q.shape) || !dk.shape.Equal(k.shape) || !dv.shape.Equal(v.shape) || !dout.shape.Equal(q.shape) {
		return d, fmt.Errorf("AttentionBackward dq %v dk %v dv %v dout %v for q %v k %v", dq.shape, dk.shape, dv.shape, dout.shape, q.shape, k.shape)
	}
	return d, nil
}
