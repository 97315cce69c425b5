package tensor

// Op functions allocate their outputs on the backend of the first operand
// and panic with *Error when operands do not fit (see Catch).

func sameBackend(ts ...*Tensor) Backend {
	b := ts[0].b
	for _, t := range ts[1:] {
		if t != nil && t.b != b {
			fail("operands on different backends (%s and %s)", b.Name(), t.b.Name())
		}
	}
	return b
}

// MatMul returns op(a)·op(b) over the last two axes (see Backend.MatMul).
func MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	be := sameBackend(a, b)
	a, doneA := dense(a)
	defer doneA()
	b, doneB := dense(b)
	defer doneB()
	r := a.Rank()
	if r < 2 || b.Rank() < 2 {
		fail("MatMul of %v and %v", a.shape, b.shape)
	}
	m := a.shape[r-2]
	if transA {
		m = a.shape[r-1]
	}
	n := b.shape[b.Rank()-1]
	if transB {
		n = b.shape[b.Rank()-2]
	}
	s := append(a.shape[:r-2].Clone(), m, n)
	dt := a.dtype
	out := New(be, dt, s...)
	check(be.MatMul(out, a, b, transA, transB, 1, 0))
	return out
}

// MatMulInto computes dst = alpha·op(a)·op(b) + beta·dst.
func MatMulInto(dst, a, b *Tensor, transA, transB bool, alpha, beta float64) {
	be := sameBackend(dst, a, b)
	a, doneA := dense(a)
	defer doneA()
	b, doneB := dense(b)
	defer doneB()
	check(be.MatMul(dst, a, b, transA, transB, alpha, beta))
}

// dense returns x with contiguous strides, for an op to read, and done,
// which gives the copy back when one was made (once the op has been
// issued: a device's allocator is stream-ordered). Left to Go's collector,
// a view's copy would hold device memory until the next collection and
// could not be recycled by the CPU pool.
func dense(x *Tensor) (c *Tensor, done func()) {
	c = x.Contiguous()
	if c.st == x.st {
		return c, func() {}
	}
	return c, func() { check(Release(c)) }
}

func binaryOp(op BinaryOp, a, b *Tensor) *Tensor {
	be := sameBackend(a, b)
	s, err := BroadcastShapes(a.shape, b.shape)
	check(err)
	out := New(be, a.dtype, s...)
	check(be.Binary(op, out, a.Expand(s), b.Expand(s)))
	return out
}

func Add(a, b *Tensor) *Tensor     { return binaryOp(OpAdd, a, b) }
func Sub(a, b *Tensor) *Tensor     { return binaryOp(OpSub, a, b) }
func Mul(a, b *Tensor) *Tensor     { return binaryOp(OpMul, a, b) }
func Div(a, b *Tensor) *Tensor     { return binaryOp(OpDiv, a, b) }
func Maximum(a, b *Tensor) *Tensor { return binaryOp(OpMax, a, b) }

// Equal is 1 where a == b, else 0.
func Equal(a, b *Tensor) *Tensor { return binaryOp(OpEq, a, b) }

// AddInPlace does dst += src (src broadcast to dst's shape).
func AddInPlace(dst, src *Tensor) {
	be := sameBackend(dst, src)
	check(be.Binary(OpAdd, dst, dst, src.Expand(dst.shape)))
}

func unaryOp(op UnaryOp, a *Tensor, arg float64) *Tensor {
	out := New(a.b, a.dtype, a.shape...)
	check(a.b.Unary(op, out, a, arg))
	return out
}

func Neg(a *Tensor) *Tensor                  { return unaryOp(OpNeg, a, 0) }
func Exp(a *Tensor) *Tensor                  { return unaryOp(OpExp, a, 0) }
func Log(a *Tensor) *Tensor                  { return unaryOp(OpLog, a, 0) }
func Silu(a *Tensor) *Tensor                 { return unaryOp(OpSilu, a, 0) }
func SiluGrad(a *Tensor) *Tensor             { return unaryOp(OpSiluGrad, a, 0) }
func Sqrt(a *Tensor) *Tensor                 { return unaryOp(OpSqrt, a, 0) }
func Recip(a *Tensor) *Tensor                { return unaryOp(OpRecip, a, 0) }
func Scale(a *Tensor, s float64) *Tensor     { return unaryOp(OpScale, a, s) }
func AddScalar(a *Tensor, s float64) *Tensor { return unaryOp(OpAddC, a, s) }
func Pow(a *Tensor, p float64) *Tensor       { return unaryOp(OpPowC, a, p) }
func Sigmoid(a *Tensor) *Tensor              { return unaryOp(OpSigmoid, a, 0) }
func Square(a *Tensor) *Tensor               { return unaryOp(OpSquare, a, 0) }

// Unary applies any unary op.
func Unary(a *Tensor, op UnaryOp) *Tensor { return unaryOp(op, a, 0) }

// ScaleInPlace does t *= s.
func ScaleInPlace(t *Tensor, s float64) { check(t.b.Unary(OpScale, t, t, s)) }

func reduceOp(op ReduceOp, a *Tensor, axis int, keepDim bool) *Tensor {
	axis, err := normAxis(axis, a.Rank())
	check(err)
	s := a.shape.Clone()
	s[axis] = 1
	out := New(a.b, a.dtype, s...)
	check(a.b.Reduce(op, out, a, axis))
	if !keepDim {
		s = append(s[:axis:axis], s[axis+1:]...)
		out = out.Reshape(s...)
	}
	return out
}

func Sum(a *Tensor, axis int, keepDim bool) *Tensor  { return reduceOp(OpSum, a, axis, keepDim) }
func Mean(a *Tensor, axis int, keepDim bool) *Tensor { return reduceOp(OpMean, a, axis, keepDim) }
func Max(a *Tensor, axis int, keepDim bool) *Tensor  { return reduceOp(OpMaxR, a, axis, keepDim) }

// SumAll reduces every axis to a 0-d tensor.
func SumAll(a *Tensor) *Tensor {
	t := a.Reshape(a.Numel())
	if a.Numel() == 0 {
		return Zeros(a.b, a.dtype)
	}
	return Sum(t, 0, false)
}

// SumTo reduces a to shape by summing the axes that broadcasting expanded;
// it undoes Expand and is the backward of broadcasting.
func SumTo(a *Tensor, shape Shape) *Tensor {
	if a.shape.Equal(shape) {
		return a
	}
	pad := a.Rank() - len(shape)
	if pad < 0 {
		fail("SumTo %v from %v", shape, a.shape)
	}
	out := a
	for i := 0; i < a.Rank(); i++ {
		if i < pad || (shape[i-pad] == 1 && a.shape[i] != 1) {
			next := reduceOp(OpSum, out, i, true)
			if out != a {
				check(Release(out)) // a partial sum, read once
			}
			out = next
		}
	}
	return out.Reshape(shape...)
}

// Softmax over the last axis.
func Softmax(a *Tensor) *Tensor {
	a, done := dense(a)
	defer done()
	out := New(a.b, a.dtype, a.shape...)
	check(a.b.Softmax(out, a, false))
	return out
}

// LogSoftmax over the last axis.
func LogSoftmax(a *Tensor) *Tensor {
	a, done := dense(a)
	defer done()
	out := New(a.b, a.dtype, a.shape...)
	check(a.b.Softmax(out, a, true))
	return out
}

// Concat joins tensors along axis; all other dims must match.
func Concat(axis int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		fail("Concat of nothing")
	}
	be := sameBackend(ts...)
	axis, err := normAxis(axis, ts[0].Rank())
	check(err)
	s := ts[0].shape.Clone()
	s[axis] = 0
	for _, t := range ts {
		if t.Rank() != len(s) {
			fail("Concat ranks differ")
		}
		for i := range s {
			if i != axis && t.shape[i] != s[i] {
				fail("Concat %v with %v along %d", ts[0].shape, t.shape, axis)
			}
		}
		s[axis] += t.shape[axis]
	}
	out := New(be, ts[0].dtype, s...)
	off := 0
	for _, t := range ts {
		check(be.Copy(out.Narrow(axis, off, t.shape[axis]), t))
		off += t.shape[axis]
	}
	return out
}

// Split cuts t along axis into views of the given sizes.
func Split(t *Tensor, axis int, sizes ...int) []*Tensor {
	out := make([]*Tensor, len(sizes))
	off := 0
	for i, n := range sizes {
		out[i] = t.Narrow(axis, off, n)
		off += n
	}
	if off != t.Dim(axis) {
		fail("Split %v along %d into %v", t.shape, axis, sizes)
	}
	return out
}

// statDType is the dtype of per-row statistics (an RMSNorm's invRMS, an
// attention's log-sum-exp) for activations of dtype dt: float32 for bf16
// activations, whose 8-bit mantissa would round the statistic the backward
// divides by or exponentiates; dt itself otherwise.
func statDType(dt DType) DType {
	if dt == BF16 {
		return F32
	}
	return dt
}

// RMSNorm normalises the last axis: y = x/rms(x)·w; it also returns the
// inverse RMS per row for the backward.
func RMSNorm(x, w *Tensor, eps float64) (y, invRMS *Tensor) {
	x, done := dense(x)
	defer done()
	y = New(x.b, x.dtype, x.shape...)
	n, _ := Rows(x)
	invRMS = New(x.b, statDType(x.dtype), n)
	check(x.b.RMSNorm(y, invRMS, x, w, eps))
	return y, invRMS
}

// RoPE rotates x [B,T,H,D] by the angles whose cos/sin are [B,T,D/2].
func RoPE(x, cos, sin *Tensor, inverse bool) *Tensor {
	x, done := dense(x)
	defer done()
	out := New(x.b, x.dtype, x.shape...)
	check(x.b.RoPE(out, x, cos.Contiguous(), sin.Contiguous(), inverse))
	return out
}

// RoPEInPlace rotates x [B,T,H,D] (contiguous) over its own storage.
func RoPEInPlace(x, cos, sin *Tensor, inverse bool) {
	if !x.IsContiguous() {
		fail("RoPEInPlace: x %v is not contiguous", x.shape)
	}
	check(x.b.RoPE(x, x, cos.Contiguous(), sin.Contiguous(), inverse))
}

// SwiGLU returns silu(gate)·up.
func SwiGLU(gate, up *Tensor) *Tensor {
	gate, doneGate := dense(gate)
	defer doneGate()
	up, doneUp := dense(up)
	defer doneUp()
	out := New(gate.b, gate.dtype, gate.shape...)
	check(gate.b.SwiGLU(out, gate, up))
	return out
}

// Embedding gathers rows of table [V,D] for ids of any shape → [ids..., D]
// in float32 (bf16 tables are widened row by row).
func Embedding(table, ids *Tensor) *Tensor {
	dt := table.dtype
	if dt == BF16 || dt == F16 {
		dt = F32
	}
	s := append(ids.shape.Clone(), table.Dim(1))
	out := New(table.b, dt, s...)
	check(table.b.Embedding(out, table.Contiguous(), ids.Contiguous()))
	return out
}

// Attention is scaled dot-product attention with GQA and masking; it returns
// the output [B,T,Hq,D] and the row log-sum-exp [B,Hq,T].
func Attention(q, k, v *Tensor, p AttentionParams) (out, lse *Tensor) {
	q, k, v = q.Contiguous(), k.Contiguous(), v.Contiguous()
	out = New(q.b, q.dtype, q.shape...)
	lse = New(q.b, statDType(q.dtype), q.Dim(0), q.Dim(2), q.Dim(1))
	check(q.b.Attention(out, lse, q, k, v, p))
	return out, lse
}

// CrossEntropy returns per-row losses of logits [N,V] against labels [N]
// and, when wantGrad, scale·d loss/d logits.
func CrossEntropy(logits, labels *Tensor, ignoreIndex int, scale float32, wantGrad bool) (loss, dlogits *Tensor) {
	logits, done := dense(logits)
	defer done()
	n, _ := Rows(logits)
	loss = New(logits.b, logits.dtype, n)
	if wantGrad {
		dlogits = New(logits.b, logits.dtype, logits.shape...)
	}
	check(logits.b.CrossEntropy(loss, dlogits, logits, labels.Contiguous(), ignoreIndex, scale))
	return loss, dlogits
}
