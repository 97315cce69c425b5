package cuda

import "fmt"

// Launchers for flash_attention.cu: attention with every mask of
// MaskedAttention on tensor cores (bf16 mma.sync, float32 softmax and
// accumulation), for head sizes that are multiples of 16 up to 128, and 256
// (Gemma's).

// Launch geometry of flash_attention.cu (keep in step with the FWD_*, DQ_*,
// DKV_* tile sizes there).
const (
	flashThreads  = 128
	flashFwdRows  = 64 // queries per forward block
	flashDqRows   = 64 // queries per dq block
	flashDkvRows  = 64 // keys per dkv block
	flashPad      = 8  // bf16 elements of padding per shared row
	flashSmemRows = 192
	// The backward's second tile buffer: 2 tiles of 32 rows, kept up to
	// flashPipeHead (see FaTiles in the .cu).
	flashPipeRows    = 64
	flashPipeHead    = 128
	flashMaxHead     = 128
	flashHeadGranule = 16
	// flashWideHead is the one head size above flashMaxHead the kernels
	// take. At it (FaTiles in the .cu) the forward's key tiles are
	// flashWideFwdKeys long and each dkv block owns 1/flashWideDkvSplit of
	// D's dK/dV columns, so that the accumulators fit in registers.
	flashWideHead      = 256
	flashWideFwdKeys   = 32
	flashWideDkvSplit  = 2
	flashMaxGridYZ     = 65535
	flashDeltaPerBlock = 8 // rows of attention_delta_bwd per 256-thread block (one warp each)
)

// FlashAttentionTakes reports why the flash kernels do not take a (nil when
// they do): they need D a multiple of 16 from 16 to 128, or 256, and B, Hq
// at most 65535 (grid dimensions), besides MaskedAttention's own rules.
func FlashAttentionTakes(a MaskedAttention) error {
	if err := a.check("FlashAttention"); err != nil {
		return err
	}
	if (a.D%flashHeadGranule != 0 || a.D > flashMaxHead) && a.D != flashWideHead {
		return badArg("FlashAttention: head size %d (the flash kernels take multiples of %d up to %d, and %d)",
			a.D, flashHeadGranule, flashMaxHead, flashWideHead)
	}
	if a.B > flashMaxGridYZ || a.Hq > flashMaxGridYZ {
		return badArg("FlashAttention: B=%d Hq=%d exceed the grid limit %d", a.B, a.Hq, flashMaxGridYZ)
	}
	return nil
}

func (a MaskedAttention) flashKernel(pass string, t DType) string {
	return fmt.Sprintf("flash_attention_d%d_%s_%s", a.D, pass, t)
}

// flashArgs appends the mask and shape arguments every flash kernel takes
// after its pointers (FA_PARAMS in the .cu).
func (a MaskedAttention) flashArgs(args *Args) *Args {
	c := 0
	if a.Causal {
		c = 1
	}
	return args.Int(a.B).Int(a.T).Int(a.S).Int(a.Hq).Int(a.Hkv).F32(a.Scale).Int(c).Int(a.QueryOffset).
		Int(a.Window).Ptr(a.KeyMask).Ptr(a.Segments).F32(a.Softcap)
}

// flashSmem is the dynamic shared memory of one pass's block: padded bf16
// rows, 192 of them but for the forward at D = 256 (64 queries and two key
// tiles of 32: 128 rows, 66 KB, two blocks per A100 SM), and 64 more for
// the backward kernels' second tile buffer up to D = flashPipeHead
// (FaTiles' BWD_PIPE).
func (a MaskedAttention) flashSmem(pass string) int {
	rows := flashSmemRows
	switch {
	case pass == "fwd" && a.D == flashWideHead:
		rows = flashFwdRows + 2*flashWideFwdKeys
	case pass != "fwd" && a.D <= flashPipeHead:
		rows += flashPipeRows
	}
	return rows * (a.D + flashPad) * 2
}

// flashDkvSplit is the number of dkv blocks per key tile, each owning that
// fraction of D's dK/dV columns.
func (a MaskedAttention) flashDkvSplit() int {
	if a.D == flashWideHead {
		return flashWideDkvSplit
	}
	return 1
}

func (d *Device) launchFlash(s Stream, pass string, t DType, blocks, heads int, a MaskedAttention, args *Args) error {
	if blocks <= 0 || a.B == 0 {
		return nil
	}
	f, err := d.Kernel(a.flashKernel(pass, t))
	if err != nil {
		return err
	}
	smem := a.flashSmem(pass)
	if err := ensureSmem(f, smem); err != nil {
		return err
	}
	return f.Launch(s, Dim3{blocks, heads, a.B}, Dim3{flashThreads, 1, 1}, smem, args)
}

func flashBlocks(n, d int) int { return (n + d - 1) / d }

// FlashAttentionFwd computes O and lse [B,Hq,T] (float32; -inf and O = 0
// for a query that sees no key), as MaskedAttentionFwd does, on tensor
// cores: Q, K, V are rounded to bf16 (F32 storage included) and P is
// rounded to bf16 before P V; the softmax is float32.
func (d *Device) FlashAttentionFwd(s Stream, t DType, o, lse, q, k, v Ptr, a MaskedAttention) error {
	if err := FlashAttentionTakes(a); err != nil {
		return err
	}
	if err := checkDType("FlashAttentionFwd", t); err != nil {
		return err
	}
	return d.launchFlash(s, "fwd", t, flashBlocks(a.T, flashFwdRows), a.Hq, a,
		a.flashArgs(new(Args).Ptr(o).Ptr(lse).Ptr(q).Ptr(k).Ptr(v)))
}

// FlashAttentionBwd computes dQ, dK, dV (=) from dO, the forward's O and
// lse (from FlashAttentionFwd or MaskedAttentionFwd: both write -inf for a
// query that sees no key), and the inputs; delta is float32 scratch of
// B*Hq*T elements. No atomics: the result is the same bit for bit on every
// run.
func (d *Device) FlashAttentionBwd(s Stream, t DType, dq, dk, dv, delta, do, o, lse, q, k, v Ptr, a MaskedAttention) error {
	if err := FlashAttentionTakes(a); err != nil {
		return err
	}
	if err := checkDType("FlashAttentionBwd", t); err != nil {
		return err
	}
	if rows := a.B * a.T * a.Hq; rows > 0 {
		fd, err := d.Kernel(kernelName("attention_delta", "bwd", t))
		if err != nil {
			return err
		}
		if err := fd.Launch(s, Dim3{flashBlocks(rows, flashDeltaPerBlock), 1, 1}, Dim3{256, 1, 1}, 0,
			new(Args).Ptr(delta).Ptr(o).Ptr(do).Int(a.B).Int(a.T).Int(a.Hq).Int(a.D)); err != nil {
			return err
		}
	}
	if err := d.launchFlash(s, "dq_bwd", t, flashBlocks(a.T, flashDqRows), a.Hq, a,
		a.flashArgs(new(Args).Ptr(dq).Ptr(do).Ptr(lse).Ptr(delta).Ptr(q).Ptr(k).Ptr(v))); err != nil {
		return err
	}
	// Launched even when T = 0: dK and dV are then zeros.
	return d.launchFlash(s, "dkv_bwd", t, flashBlocks(a.S, flashDkvRows)*a.flashDkvSplit(), a.Hkv, a,
		a.flashArgs(new(Args).Ptr(dk).Ptr(dv).Ptr(do).Ptr(lse).Ptr(delta).Ptr(q).Ptr(k).Ptr(v)))
}
