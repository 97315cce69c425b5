package cuda

// Launchers for attention_masked.cu: attention with every mask of the
// tensor backend's contract, for the shapes the tiled kernels of
// attention.cu do not take.

// MaskedAttention describes Q, O [B,T,Hq,D] and K, V [B,S,Hkv,D], row-major,
// Hq a multiple of Hkv, D at most 256. Query t sits at position t+QueryOffset
// among the S keys. KeyMask and Segments are [B,S] int32 device arrays or 0.
// Softcap > 0 soft-caps the scores before masking (the
// attention_masked_softcap_* kernels); 0 runs the uncapped ones.
type MaskedAttention struct {
	B, T, S, Hq, Hkv, D int
	Scale               float32
	Causal              bool
	QueryOffset, Window int
	KeyMask, Segments   Ptr
	Softcap             float32
}

// kernel names the masked kernel of one pass, capped or not.
func (a MaskedAttention) kernel(pass string, t DType) string {
	op := "attention_masked"
	if a.Softcap != 0 {
		op = "attention_masked_softcap"
	}
	return op + "_" + pass + "_" + t.String()
}

const maskedWarps = 4

func (a MaskedAttention) check(op string) error {
	if a.B < 0 || a.T < 0 || a.S < 0 || a.Hq <= 0 || a.Hkv <= 0 || a.Hq%a.Hkv != 0 || a.D <= 0 || a.D > 256 {
		return badArg("%s: B=%d T=%d S=%d Hq=%d Hkv=%d D=%d (Hq a multiple of Hkv, 0 < D <= 256)", op, a.B, a.T, a.S, a.Hq, a.Hkv, a.D)
	}
	if a.Segments != 0 && a.S < a.T {
		return badArg("%s: segments need S >= T (S=%d T=%d)", op, a.S, a.T)
	}
	if a.Softcap != 0 {
		return checkCap(op, a.Softcap)
	}
	return nil
}

func (a MaskedAttention) args(args *Args) *Args {
	c := 0
	if a.Causal {
		c = 1
	}
	return capArg(args.Int(a.B).Int(a.T).Int(a.S).Int(a.Hq).Int(a.Hkv).Int(a.D).F32(a.Scale).Int(c).Int(a.QueryOffset).Int(a.Window).Ptr(a.KeyMask).Ptr(a.Segments), a.Softcap)
}

func (d *Device) launchWarps(s Stream, name string, rows int64, args *Args) error {
	if rows <= 0 {
		return nil
	}
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	blocks := (rows + maskedWarps - 1) / maskedWarps
	if blocks > 1<<31-1 {
		return badArg("%s: %d rows", name, rows)
	}
	return f.Launch(s, Dim3{int(blocks), 1, 1}, Dim3{32 * maskedWarps, 1, 1}, 0, args)
}

// MaskedAttentionFwd computes O and lse [B,Hq,T] (float32; -inf and O = 0
// for a query that sees no key).
func (d *Device) MaskedAttentionFwd(s Stream, t DType, o, lse, q, k, v Ptr, a MaskedAttention) error {
	if err := a.check("MaskedAttentionFwd"); err != nil {
		return err
	}
	if err := checkDType("MaskedAttentionFwd", t); err != nil {
		return err
	}
	rows := int64(a.B) * int64(a.Hq) * int64(a.T)
	return d.launchWarps(s, a.kernel("fwd", t), rows, a.args(new(Args).Ptr(o).Ptr(lse).Ptr(q).Ptr(k).Ptr(v)))
}

// MaskedAttentionBwd computes dQ, dK, dV (=) from dO, the forward's O and
// lse, and the inputs; delta is float32 scratch of B*Hq*T elements.
func (d *Device) MaskedAttentionBwd(s Stream, t DType, dq, dk, dv, delta, do, o, lse, q, k, v Ptr, a MaskedAttention) error {
	if err := a.check("MaskedAttentionBwd"); err != nil {
		return err
	}
	if err := checkDType("MaskedAttentionBwd", t); err != nil {
		return err
	}
	rows := int64(a.B) * int64(a.Hq) * int64(a.T)
	if err := d.launchWarps(s, a.kernel("dq_bwd", t), rows,
		a.args(new(Args).Ptr(dq).Ptr(delta).Ptr(do).Ptr(o).Ptr(lse).Ptr(q).Ptr(k).Ptr(v))); err != nil {
		return err
	}
	keys := int64(a.B) * int64(a.Hkv) * int64(a.S)
	return d.launchWarps(s, a.kernel("dkv_bwd", t), keys,
		a.args(new(Args).Ptr(dk).Ptr(dv).Ptr(delta).Ptr(do).Ptr(lse).Ptr(q).Ptr(k).Ptr(v)))
}
