package cuda

// Launch geometry of attention.cu (keep in step with ROWS and TILE there).
const (
	attnRows, attnTile, attnThreads = 16, 32, 128
)

// AttentionShape describes a causal GQA attention: Q, O [B,T,Hq,D] and
// K, V [B,T,Hkv,D], row-major, Hq a multiple of Hkv, D a multiple of 32 up
// to 128. Mask is a [B,T] int32 key padding mask (nonzero = real token), or
// 0 for none. Scale multiplies q.k (usually 1/sqrt(D)). Softcap > 0
// soft-caps the scores to Softcap·tanh(score/Softcap) before masking (the
// attention_softcap_* kernels, Gemma 2); 0 runs the uncapped kernels.
type AttentionShape struct {
	B, T, Hq, Hkv, D int
	Mask             Ptr
	Scale            float32
	Softcap          float32
}

// kernel names the tiled kernel of one pass ("fwd", "dq_bwd", "dkv_bwd"),
// capped or not.
func (a AttentionShape) kernel(pass string, t DType) string {
	op := "attention"
	if a.Softcap != 0 {
		op = "attention_softcap"
	}
	return op + "_" + pass + "_" + t.String()
}

// capArg appends the cap to a capped kernel's arguments.
func capArg(args *Args, c float32) *Args {
	if c != 0 {
		return args.F32(c)
	}
	return args
}

func (a AttentionShape) check(op string) error {
	if a.B < 0 || a.T < 0 || a.Hq <= 0 || a.Hkv <= 0 || a.Hq%a.Hkv != 0 || a.D <= 0 || a.D%32 != 0 || a.D > 128 {
		return badArg("%s: B=%d T=%d Hq=%d Hkv=%d D=%d (need Hq a multiple of Hkv, D a multiple of 32 up to 128)", op, a.B, a.T, a.Hq, a.Hkv, a.D)
	}
	if a.B > 65535 || a.Hq > 65535 {
		return badArg("%s: B=%d Hq=%d exceed the grid limit 65535", op, a.B, a.Hq)
	}
	if a.Softcap != 0 {
		return checkCap(op, a.Softcap)
	}
	return nil
}

// AttentionFwd computes O and lse [B,Hq,T] (float32, kept for the backward).
func (d *Device) AttentionFwd(s Stream, t DType, o, lse, q, k, v Ptr, a AttentionShape) error {
	if err := a.check("AttentionFwd"); err != nil {
		return err
	}
	if a.B == 0 || a.T == 0 {
		return nil
	}
	f, err := d.Kernel(a.kernel("fwd", t))
	if err != nil {
		return err
	}
	smem := (attnRows*a.D + attnTile*(a.D+1) + attnTile*a.D) * 4
	if err := ensureSmem(f, smem); err != nil {
		return err
	}
	grid := Dim3{(a.T + attnRows - 1) / attnRows, a.Hq, a.B}
	return f.Launch(s, grid, Dim3{attnThreads, 1, 1}, smem,
		capArg(new(Args).Ptr(o).Ptr(lse).Ptr(q).Ptr(k).Ptr(v).Ptr(a.Mask).Int(a.T).Int(a.Hq).Int(a.Hkv).Int(a.D).F32(a.Scale), a.Softcap))
}

// AttentionBwd computes dQ, dK, dV (=) from dO, the forward's O and lse, and
// the inputs. delta is float32 scratch of B*Hq*T elements.
func (d *Device) AttentionBwd(s Stream, t DType, dq, dk, dv, delta, do, o, lse, q, k, v Ptr, a AttentionShape) error {
	if err := a.check("AttentionBwd"); err != nil {
		return err
	}
	if a.B == 0 || a.T == 0 {
		return nil
	}
	fd, err := d.Kernel(kernelName("attention_delta", "bwd", t))
	if err != nil {
		return err
	}
	rows := a.B * a.T * a.Hq
	if err := fd.Launch(s, Dim3{(rows*32 + 255) / 256, 1, 1}, Dim3{256, 1, 1}, 0,
		new(Args).Ptr(delta).Ptr(o).Ptr(do).Int(a.B).Int(a.T).Int(a.Hq).Int(a.D)); err != nil {
		return err
	}
	fq, err := d.Kernel(a.kernel("dq_bwd", t))
	if err != nil {
		return err
	}
	smemQ := (2*attnRows*a.D + 2*attnTile*(a.D+1)) * 4
	if err := ensureSmem(fq, smemQ); err != nil {
		return err
	}
	if err := fq.Launch(s, Dim3{(a.T + attnRows - 1) / attnRows, a.Hq, a.B}, Dim3{attnThreads, 1, 1}, smemQ,
		capArg(new(Args).Ptr(dq).Ptr(do).Ptr(lse).Ptr(delta).Ptr(q).Ptr(k).Ptr(v).Ptr(a.Mask).Int(a.T).Int(a.Hq).Int(a.Hkv).Int(a.D).F32(a.Scale), a.Softcap)); err != nil {
		return err
	}
	fkv, err := d.Kernel(a.kernel("dkv_bwd", t))
	if err != nil {
		return err
	}
	smemKV := (2*attnRows*a.D + 2*attnTile*(a.D+1) + 2*attnTile) * 4
	if err := ensureSmem(fkv, smemKV); err != nil {
		return err
	}
	return fkv.Launch(s, Dim3{(a.T + attnRows - 1) / attnRows, a.Hkv, a.B}, Dim3{attnThreads, 1, 1}, smemKV,
		capArg(new(Args).Ptr(dk).Ptr(dv).Ptr(do).Ptr(lse).Ptr(delta).Ptr(q).Ptr(k).Ptr(v).Ptr(a.Mask).Int(a.T).Int(a.Hq).Int(a.Hkv).Int(a.D).F32(a.Scale), a.Softcap))
}
