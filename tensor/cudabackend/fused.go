package cudabackend

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// The fused ops of a Llama training step through kernels/cuda's kernels.
// Layout adapters, where the Backend contract and a kernel differ, are
// noted at each op.

// allF32 checks that every non-nil tensor is F32: the operands that only
// have float32 kernels (Embedding's gradient, CrossEntropy) and the
// float32-only operand of the norms that also take bf16 activations
// (invRMS, the kernels' float32 rstd; dw has checkNormGrad).
func allF32(op string, ts ...*tensor.Tensor) error {
	for _, t := range ts {
		if t != nil && t.DType() != tensor.F32 {
			return fmt.Errorf("cuda: %w: %s on %v (F32 expected)", tensor.ErrUnsupported, op, t.DType())
		}
	}
	return nil
}

// actDType returns the storage type of a fused op's activations (the
// non-nil ts): cuda.F32 when all are F32 (the float32 kernels), cuda.BF16
// when all are BF16 (the kernels' bf16 variants, which read bf16, compute
// in float32 and round each output once to bf16). Mixed dtypes, or any
// other dtype, are refused.
func actDType(op string, ts ...*tensor.Tensor) (cuda.DType, error) {
	var first *tensor.Tensor
	for _, t := range ts {
		if t == nil {
			continue
		}
		if first == nil {
			first = t
			if dt := t.DType(); dt != tensor.F32 && dt != tensor.BF16 {
				return 0, fmt.Errorf("cuda: %w: %s on %v (F32 or BF16 expected)", tensor.ErrUnsupported, op, dt)
			}
			continue
		}
		if t.DType() != first.DType() {
			return 0, fmt.Errorf("cuda: %w: %s on mixed %v and %v (all F32 or all BF16 expected)", tensor.ErrUnsupported, op, first.DType(), t.DType())
		}
	}
	if first == nil || first.DType() == tensor.F32 {
		return cuda.F32, nil
	}
	return cuda.BF16, nil
}

// normWeight returns the norm weight's address and type for the rmsnorm
// kernels: w == nil is the cached float32 ones (x·r·1 is x·r exactly), a
// BF16 w (with BF16 activations) is read as bf16, and an F32 w as float32
// for either activation type (with BF16 activations the _w32_ kernels: the
// weight is never rounded, as transformers applies Gemma's float32
// (1 + w), and as an F32 weight times a bf16 tensor promotes to float32 in
// PyTorch).
func (b *Backend) normWeight(w *tensor.Tensor, pw cuda.Ptr, d int) (cuda.Ptr, cuda.DType, error) {
	if w == nil {
		p, err := b.onesF32(d)
		return p, cuda.F32, err
	}
	if w.DType() == tensor.BF16 {
		return pw, cuda.BF16, nil
	}
	return pw, cuda.F32, nil
}

// checkNormWeight refuses a norm weight normWeight cannot serve: other
// than F32, or BF16 with F32 activations (refused before bf16 activations
// too).
func checkNormWeight(op string, t cuda.DType, w *tensor.Tensor) error {
	if w != nil && w.DType() != tensor.F32 && (t != cuda.BF16 || w.DType() != tensor.BF16) {
		act := tensor.F32
		if t == cuda.BF16 {
			act = tensor.BF16
		}
		return fmt.Errorf("cuda: %w: %s weight %v with %v activations (F32, or BF16 with BF16 activations, expected)", tensor.ErrUnsupported, op, w.DType(), act)
	}
	return nil
}

// checkNormGrad refuses a norm weight gradient other than F32:
// rmsnorm_dw_bwd_{f32,bf16} both sum dy·x·r in float32 and add it
// atomically into a float32 dw; there is no bf16 dw kernel (bf16 atomic
// adds would round every block's partial sum).
func checkNormGrad(op string, dw *tensor.Tensor) error {
	if dw != nil && dw.DType() != tensor.F32 {
		return fmt.Errorf("cuda: %w: %s dw %v (F32 expected: the kernels accumulate dw in float32, for F32 and BF16 activations alike)", tensor.ErrUnsupported, op, dw.DType())
	}
	return nil
}

// RMSNorm: x and dst both F32 or both BF16 (the bf16 kernel); invRMS is
// the kernel's float32 rstd in either case. w may be F32 (used as float32
// with BF16 activations too, see normWeight), BF16 with BF16 activations,
// or nil (ones).
func (b *Backend) RMSNorm(dst, invRMS, x, w *tensor.Tensor, eps float64) error {
	defer keep(dst, invRMS, x, w)
	if err := tensor.CheckRMSNorm(dst, invRMS, x, w); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("RMSNorm", dst, x)
	if err != nil {
		return err
	}
	if err := allF32("RMSNorm invRMS", invRMS); err != nil {
		return err
	}
	if err := checkNormWeight("RMSNorm", t, w); err != nil {
		return err
	}
	n, d := tensor.Rows(x)
	if n == 0 {
		return nil
	}
	p, err := b.ptrs(dst, invRMS, x, w)
	if err != nil {
		return err
	}
	pw, wt, err := b.normWeight(w, p[3], d)
	if err != nil {
		return err
	}
	return b.dev.RMSNormFwd(b.s, t, wt, p[0], p[1], p[2], pw, n, d, float32(eps))
}

// RMSNormBackward: dx (=) and dw (+=, may be nil). A nil dx gets scratch
// (the kernel always writes it). dx, dy and x are all F32 or all BF16; w
// as for RMSNorm; invRMS and dw F32 in either case (see checkNormGrad).
func (b *Backend) RMSNormBackward(dx, dw, dy, x, w, invRMS *tensor.Tensor) error {
	defer keep(dx, dw, dy, x, w, invRMS)
	if err := tensor.CheckRMSNormBackward(dx, dw, dy, x, w, invRMS); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("RMSNormBackward", dx, dy, x)
	if err != nil {
		return err
	}
	if err := allF32("RMSNormBackward invRMS", invRMS); err != nil {
		return err
	}
	if err := checkNormGrad("RMSNormBackward", dw); err != nil {
		return err
	}
	if err := checkNormWeight("RMSNormBackward", t, w); err != nil {
		return err
	}
	n, d := tensor.Rows(x)
	if n == 0 {
		return nil
	}
	p, err := b.ptrs(dx, dw, dy, x, w, invRMS)
	if err != nil {
		return err
	}
	pw, wt, err := b.normWeight(w, p[4], d)
	if err != nil {
		return err
	}
	if dx == nil {
		q, release, err := b.temp(t, x.Numel())
		if err != nil {
			return err
		}
		defer release()
		p[0] = q
	}
	return b.dev.RMSNormBwd(b.s, t, wt, p[0], p[1], p[2], p[3], pw, p[5], n, d)
}

// RoPE: the kernel rotates x [N,H,D] in place by positions pos [N] into
// tables [maxPos, D/2]. The contract's cos, sin [B,T,D/2] are such a table
// with one row per token, so pos is 0..B·T−1; dst receives a copy of x
// first. x and dst are both F32 or both BF16 (rope_{fwd,bwd}_bf16 rotates
// in float32 and rounds once); the kernels read float32 tables, so tables
// of another dtype (nn's float64 ones, bf16) are converted to float32
// scratch.
func (b *Backend) RoPE(dst, x, cos, sin *tensor.Tensor, inverse bool) error {
	defer keep(dst, x, cos, sin)
	if err := tensor.CheckRoPE(dst, x, cos, sin); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("RoPE", dst, x)
	if err != nil {
		return err
	}
	xs := x.Shape()
	N, H, D := xs[0]*xs[1], xs[2], xs[3]
	if x.Numel() == 0 {
		return nil
	}
	p, err := b.ptrs(dst, x, cos, sin)
	if err != nil {
		return err
	}
	for i, tab := range []*tensor.Tensor{cos, sin} {
		if tab.DType() == tensor.F32 {
			continue
		}
		fk, err := kdt(tab.DType())
		if err != nil {
			return err
		}
		q, release, err := b.temp(cuda.F32, tab.Numel())
		if err != nil {
			return err
		}
		defer release()
		l, err := cuda.NewLayout([]int{tab.Numel()}, []int{1}, []int{1})
		if err != nil {
			return err
		}
		if err := b.dev.ConvertStrided(b.s, l, q, cuda.F32, p[2+i], fk); err != nil {
			return err
		}
		p[2+i] = q
	}
	if p[0] != p[1] {
		if err := b.dev.CopyDtoDAsync(b.s, p[0], p[1], x.Numel()*t.Size()); err != nil {
			return err
		}
	}
	pos, err := b.positions(N)
	if err != nil {
		return err
	}
	return b.dev.RoPE(b.s, t, inverse, p[0], pos, p[2], p[3], N, H, D)
}

// SwiGLU: dst = silu(gate)·up; all F32 or all BF16, as gated.
func (b *Backend) SwiGLU(dst, gate, up *tensor.Tensor) error {
	return b.gated("SwiGLU", b.dev.SwiGLUFwd, dst, gate, up)
}

// SwiGLUBackward: dgate, dup (=); either may be nil (scratch then). All
// F32 or all BF16, as gatedBackward.
func (b *Backend) SwiGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	return b.gatedBackward("SwiGLUBackward", b.dev.SwiGLUBwd, dgate, dup, dy, gate, up)
}

// GeGLU: dst = gelu_tanh(gate)·up (Gemma's MLP), the same checks as the
// CPU's; all F32 or all BF16, as gated.
func (b *Backend) GeGLU(dst, gate, up *tensor.Tensor) error {
	return b.gated("GeGLU", b.dev.GeGLUFwd, dst, gate, up)
}

// GeGLUBackward: dgate, dup (=); either may be nil (scratch then). All F32
// or all BF16, as gatedBackward.
func (b *Backend) GeGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	return b.gatedBackward("GeGLUBackward", b.dev.GeGLUBwd, dgate, dup, dy, gate, up)
}

// gated runs a gated MLP activation's forward (SwiGLU, GeGLU): the shared
// shape checks (named for GeGLU, whose CPU op reuses SwiGLU's), operands
// all F32 or all BF16 (the bf16 kernel computes in float32 and rounds the
// output once), one kernel.
func (b *Backend) gated(name string, kernel func(s cuda.Stream, t cuda.DType, out, g, u cuda.Ptr, n int64) error, dst, gate, up *tensor.Tensor) error {
	defer keep(dst, gate, up)
	if err := tensor.CheckSwiGLU(dst, gate, up); err != nil {
		return cudaErr(gatedErr(name, "SwiGLU", err))
	}
	t, err := actDType(name, dst, gate, up)
	if err != nil {
		return err
	}
	p, err := b.ptrs(dst, gate, up)
	if err != nil {
		return err
	}
	return kernel(b.s, t, p[0], p[1], p[2], int64(dst.Numel()))
}

// gatedBackward is gated's backward: dgate, dup (=), either nil for a
// scratch buffer of the operands' type.
func (b *Backend) gatedBackward(name string, kernel func(s cuda.Stream, t cuda.DType, dg, du, dout, g, u cuda.Ptr, n int64) error, dgate, dup, dy, gate, up *tensor.Tensor) error {
	defer keep(dgate, dup, dy, gate, up)
	if err := tensor.CheckSwiGLUBackward(dgate, dup, dy, gate, up); err != nil {
		return cudaErr(gatedErr(name, "SwiGLUBackward", err))
	}
	t, err := actDType(name, dgate, dup, dy, gate, up)
	if err != nil {
		return err
	}
	n := dy.Numel()
	p, err := b.ptrs(dgate, dup, dy, gate, up)
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		if p[i] == 0 && n > 0 {
			q, release, err := b.temp(t, n)
			if err != nil {
				return err
			}
			defer release()
			p[i] = q
		}
	}
	return kernel(b.s, t, p[0], p[1], p[2], p[3], p[4], int64(n))
}

// gatedErr names the op of a shape error from SwiGLU's shared checks when
// the op is another (GeGLU), as the CPU backend's text does.
func gatedErr(name, checked string, err error) error {
	if name == checked {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// ids32 narrows I32/I64 ids (checked by tensor.CheckIDs) to an int32
// scratch array, checking that each is in [0, V) or is the ignore value
// (mapped to cuda.IgnoreIndex), and reports the first bad position: from
// the ids' host copy when they have one, else by waiting for the device's
// check.
func (b *Backend) ids32(op string, ids *tensor.Tensor, V int, ignore *int) (cuda.Ptr, func(), error) {
	it := cuda.I64
	if ids.DType() == tensor.I32 {
		it = cuda.I32
	}
	n := ids.Numel()
	src, err := b.readPtr(ids)
	if err != nil {
		return 0, nil, err
	}
	ig, has := int64(0), ignore != nil
	if has {
		ig = int64(*ignore)
	}
	// With the ids' host copy (FromHost's, the usual case) they are checked
	// here, and the host does not wait for the GPU; otherwise the kernel
	// flags the first bad position and the host reads the flag back.
	host := b.hostInts(ids)
	for i, id := range host {
		if (id < 0 || id >= int64(V)) && !(has && id == ig) {
			return 0, nil, fmt.Errorf("cuda: %s: id %d at position %d outside vocabulary of %d", op, id, i, V)
		}
	}
	out, release, err := b.temp(cuda.I32, n+1) // the last word is the bad flag
	if err != nil {
		return 0, nil, err
	}
	bad := out.Add(n * 4)
	if host == nil { // the flag is read back: start it at "none"
		if err := b.dev.Memset32Async(b.s, bad, math.MaxInt32, 1); err != nil {
			release()
			return 0, nil, err
		}
	}
	if err := b.dev.IndexI32(b.s, out, src, it, int64(n), int64(V), ig, has, cuda.IgnoreIndex, bad); err != nil {
		release()
		return 0, nil, err
	}
	if host != nil {
		return out, release, nil
	}
	flag := make([]int32, 1)
	if err := cuda.CopyDtoH(b.dev, flag, bad); err != nil {
		release()
		return 0, nil, err
	}
	if flag[0] != math.MaxInt32 {
		release()
		got := make([]int64, 1)
		one := tensor.New(b, tensor.I64, 1)
		if err := b.Copy(one, ids.Reshape(n).Narrow(0, int(flag[0]), 1)); err == nil {
			_ = b.ToHost(one, got)
		}
		return 0, nil, fmt.Errorf("cuda: %s: id %d at position %d outside vocabulary of %d", op, got[0], flag[0], V)
	}
	return out, release, nil
}

// Embedding: the kernel writes rows in the table's dtype, so a BF16 table
// into an F32 dst gathers into bf16 scratch and widens it (exact).
func (b *Backend) Embedding(dst, table, ids *tensor.Tensor) error {
	defer keep(dst, table, ids)
	V, D, err := tensor.CheckEmbedding(dst, table, ids)
	if err != nil {
		return cudaErr(err)
	}
	n := ids.Numel()
	tk, err := kdt(table.DType())
	if err != nil {
		return err
	}
	dk, err := kdt(dst.DType())
	if err != nil {
		return err
	}
	if (tk != cuda.F32 && tk != cuda.BF16) || (dk != tk && dk != cuda.F32) {
		return fmt.Errorf("cuda: %w: Embedding of a %v table into %v", tensor.ErrUnsupported, table.DType(), dst.DType())
	}
	if n == 0 || D == 0 {
		return nil
	}
	idx, release, err := b.ids32("Embedding", ids, V, nil)
	if err != nil {
		return err
	}
	defer release()
	p, err := b.ptrs(dst, table)
	if err != nil {
		return err
	}
	if dk == tk {
		return b.dev.EmbeddingFwd(b.s, tk, p[0], p[1], idx, n, V, D)
	}
	q, relQ, err := b.temp(cuda.BF16, n*D)
	if err != nil {
		return err
	}
	defer relQ()
	if err := b.dev.EmbeddingFwd(b.s, cuda.BF16, q, p[1], idx, n, V, D); err != nil {
		return err
	}
	return b.dev.Cast(b.s, p[0], cuda.F32, q, cuda.BF16, int64(n*D))
}

// EmbeddingBackward: dtable (+=, F32) [V,D] from dy [N,D] (atomics).
func (b *Backend) EmbeddingBackward(dtable, dy, ids *tensor.Tensor) error {
	defer keep(dtable, dy, ids)
	V, D, err := tensor.CheckEmbeddingBackward(dtable, dy, ids)
	if err != nil {
		return cudaErr(err)
	}
	if err := allF32("EmbeddingBackward", dtable, dy); err != nil {
		return err
	}
	n := ids.Numel()
	if n == 0 || D == 0 {
		return nil
	}
	idx, release, err := b.ids32("EmbeddingBackward", ids, V, nil)
	if err != nil {
		return err
	}
	defer release()
	p, err := b.ptrs(dtable, dy)
	if err != nil {
		return err
	}
	return b.dev.EmbeddingBwd(b.s, cuda.F32, p[0], p[1], idx, n, V, D)
}

// CrossEntropy runs the chunked kernels with the whole vocabulary as one
// chunk: init, fold, loss per row, then (when dlogits is set) the gradient
// with invCount = scale. Labels equal to ignoreIndex become the kernels'
// -100; other labels outside [0, V) are an error, as on the CPU.
func (b *Backend) CrossEntropy(loss, dlogits, logits, labels *tensor.Tensor, ignoreIndex int, scale float32) error {
	defer keep(loss, dlogits, logits, labels)
	n, v, err := tensor.CheckCrossEntropy(loss, dlogits, logits, labels)
	if err != nil {
		return cudaErr(err)
	}
	if err := allF32("CrossEntropy", loss, dlogits, logits); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	tg, release, err := b.ids32("CrossEntropy", labels, v, &ignoreIndex)
	if err != nil {
		return err
	}
	defer release()
	p, err := b.ptrs(loss, dlogits, logits)
	if err != nil {
		return err
	}
	scratch, relS, err := b.temp(cuda.F32, 4*n) // rowMax, rowSum, tgtLogit, lse
	if err != nil {
		return err
	}
	defer relS()
	rowMax, rowSum, tgt, lse := scratch, scratch.Add(4*n), scratch.Add(8*n), scratch.Add(12*n)
	if err := b.dev.CrossEntropyInit(b.s, rowMax, rowSum, n); err != nil {
		return err
	}
	if err := b.dev.CrossEntropyFwd(b.s, cuda.F32, p[2], v, 0, v, n, tg, rowMax, rowSum, tgt); err != nil {
		return err
	}
	if err := b.dev.CrossEntropyLoss(b.s, n, v, tg, rowMax, rowSum, tgt, lse, p[0], 0, 1); err != nil {
		return err
	}
	if dlogits == nil {
		return nil
	}
	return b.dev.CrossEntropyBwd(b.s, cuda.F32, p[1], p[2], v, 0, v, n, v, tg, lse, scale)
}
