package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Attention and its backward. The layouts match the contract directly:
// q, out [B,T,Hq,D], k, v [B,S,Hkv,D], lse [B,Hq,T] float32.
//
// Two kernel families:
//   - attention.cu's tiled kernels (shared-memory tiles, online softmax),
//     used for the training case they cover: causal, no KV-cache offset, no
//     window, no packed documents, S = T, D a multiple of 32 up to 128, with
//     or without a key padding mask. A query that sees no key gets lse = +inf
//     there (the CPU writes −inf); both give O = 0 and zero gradients, and
//     the lse only travels from this forward to this backward.
//   - attention_masked.cu's warp-per-row kernels for everything else: every
//     mask of AttentionParams, any D up to 256, S ≠ T.
//
// Both families have soft-capped variants (AttentionParams.Softcap, Gemma
// 2's attn_logit_softcapping: scores c·tanh(s/c) before masking), chosen by
// the launchers when the cap is not 0; the uncapped kernels are unchanged.
// Heads above 256 return tensor.ErrUnsupported.

type attnDims = tensor.AttentionDims

// headSizeOK rejects heads above the kernels' 256.
func headSizeOK(d attnDims) error {
	if d.D > 256 {
		return fmt.Errorf("cuda: %w: attention head size %d (at most 256)", tensor.ErrUnsupported, d.D)
	}
	return nil
}

// maskI32 converts a [B,S] mask of any dtype (its size checked by
// tensor.CheckAttention) to int32 scratch (0 when nil); float masks
// truncate as the CPU's int(x) does.
func (b *Backend) maskI32(m *tensor.Tensor, B, S int) (cuda.Ptr, func(), error) {
	if m == nil {
		return 0, func() {}, nil
	}
	fk, err := kdt(m.DType())
	if err != nil {
		return 0, nil, err
	}
	// The mask must live on this device before any scratch is taken.
	if _, err := b.ptr(m); err != nil {
		return 0, nil, err
	}
	q, release, err := b.temp(cuda.I32, B*S)
	if err != nil {
		return 0, nil, err
	}
	if B*S == 0 {
		return q, release, nil
	}
	flat := m.Reshape(B * S) // a view when m is contiguous, else a dense copy
	src, err := b.ptr(flat)
	if err != nil {
		release()
		return 0, nil, err
	}
	l, err := cuda.NewLayout([]int{B * S}, []int{1}, []int{1})
	if err == nil {
		err = b.dev.ConvertStrided(b.s, l, q, cuda.I32, src, fk)
	}
	if err != nil {
		release()
		return 0, nil, err
	}
	return q, release, nil
}

// fast reports whether attention.cu's tiled kernels take this call.
func (b *Backend) fast(d attnDims, p tensor.AttentionParams) bool {
	return !b.noFastAttention && p.Causal && p.QueryOffset == 0 && p.Window == 0 && p.Segments == nil &&
		d.S == d.T && d.D%32 == 0 && d.D <= 128
}

type attnMasks struct {
	key, seg cuda.Ptr
	release  func()
}

func (b *Backend) masks(d attnDims, p tensor.AttentionParams) (attnMasks, error) {
	key, rk, err := b.maskI32(p.KeyMask, d.B, d.S)
	if err != nil {
		return attnMasks{}, err
	}
	seg, rs, err := b.maskI32(p.Segments, d.B, d.S)
	if err != nil {
		rk()
		return attnMasks{}, err
	}
	return attnMasks{key, seg, func() { rk(); rs() }}, nil
}

func (m attnMasks) shape(d attnDims, p tensor.AttentionParams) cuda.MaskedAttention {
	return cuda.MaskedAttention{B: d.B, T: d.T, S: d.S, Hq: d.Hq, Hkv: d.Hkv, D: d.D, Scale: p.Scale,
		Causal: p.Causal, QueryOffset: p.QueryOffset, Window: p.Window, KeyMask: m.key, Segments: m.seg, Softcap: p.Softcap}
}

func (b *Backend) Attention(out, lse, q, k, v *tensor.Tensor, p tensor.AttentionParams) error {
	defer keep(out, lse, q, k, v, p.KeyMask, p.Segments)
	d, err := tensor.CheckAttention(out, lse, q, k, v, p)
	if err != nil {
		return cudaErr(err)
	}
	if err := allF32("Attention", out, lse, q, k, v); err != nil {
		return err
	}
	if err := headSizeOK(d); err != nil {
		return err
	}
	if q.Numel() == 0 {
		return nil
	}
	ps, err := b.ptrs(out, lse, q, k, v)
	if err != nil {
		return err
	}
	m, err := b.masks(d, p)
	if err != nil {
		return err
	}
	defer m.release()
	if b.fast(d, p) {
		a := cuda.AttentionShape{B: d.B, T: d.T, Hq: d.Hq, Hkv: d.Hkv, D: d.D, Mask: m.key, Scale: p.Scale, Softcap: p.Softcap}
		return b.dev.AttentionFwd(b.s, cuda.F32, ps[0], ps[1], ps[2], ps[3], ps[4], a)
	}
	return b.dev.MaskedAttentionFwd(b.s, cuda.F32, ps[0], ps[1], ps[2], ps[3], ps[4], m.shape(d, p))
}

func (b *Backend) AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v *tensor.Tensor, p tensor.AttentionParams) error {
	defer keep(dq, dk, dv, dout, out, lse, q, k, v, p.KeyMask, p.Segments)
	d, err := tensor.CheckAttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, p)
	if err != nil {
		return cudaErr(err)
	}
	if err := allF32("AttentionBackward", dq, dk, dv, dout, out, lse, q, k, v); err != nil {
		return err
	}
	if err := headSizeOK(d); err != nil {
		return err
	}
	if q.Numel() == 0 && k.Numel() == 0 {
		return nil
	}
	ps, err := b.ptrs(dq, dk, dv, dout, out, lse, q, k, v)
	if err != nil {
		return err
	}
	m, err := b.masks(d, p)
	if err != nil {
		return err
	}
	defer m.release()
	delta, relD, err := b.temp(cuda.F32, d.B*d.Hq*d.T)
	if err != nil {
		return err
	}
	defer relD()
	if b.fast(d, p) {
		a := cuda.AttentionShape{B: d.B, T: d.T, Hq: d.Hq, Hkv: d.Hkv, D: d.D, Mask: m.key, Scale: p.Scale, Softcap: p.Softcap}
		return b.dev.AttentionBwd(b.s, cuda.F32, ps[0], ps[1], ps[2], delta, ps[3], ps[4], ps[5], ps[6], ps[7], ps[8], a)
	}
	return b.dev.MaskedAttentionBwd(b.s, cuda.F32, ps[0], ps[1], ps[2], delta, ps[3], ps[4], ps[5], ps[6], ps[7], ps[8], m.shape(d, p))
}
