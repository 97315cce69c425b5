package cuda

// Launchers for elementwise.cu, rmsnorm.cu, rope.cu, swiglu.cu, embedding.cu
// and nf4.cu. Sizes are element counts; pointers are device addresses of
// row-major data in the given DType. See each .cu for the math.

func checkDType(op string, t DType) error {
	if t != F32 && t != BF16 {
		return badArg("%s: unsupported dtype %v", op, t)
	}
	return nil
}

// Cast converts n elements between float32 and bfloat16 (round to nearest
// even); from == to is a device copy.
func (d *Device) Cast(s Stream, dst Ptr, to DType, src Ptr, from DType, n int64) error {
	switch {
	case n < 0:
		return badArg("Cast: n=%d", n)
	case from == to:
		return d.CopyDtoDAsync(s, dst, src, int(n)*to.Size())
	case from == F32 && to == BF16:
		return d.launch1D(s, "cast_bf16_fwd_f32", n, new(Args).Ptr(dst).Ptr(src).I64(n))
	case from == BF16 && to == F32:
		return d.launch1D(s, "cast_f32_fwd_bf16", n, new(Args).Ptr(dst).Ptr(src).I64(n))
	}
	return badArg("Cast: %v to %v", from, to)
}

// Add sets out = a + b over n elements (out may alias a or b).
func (d *Device) Add(s Stream, t DType, out, a, b Ptr, n int64) error {
	if err := checkDType("Add", t); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("add", "fwd", t), n, new(Args).Ptr(out).Ptr(a).Ptr(b).I64(n))
}

// Scale sets out = alpha * x over n elements (out may alias x).
func (d *Device) Scale(s Stream, t DType, out, x Ptr, alpha float32, n int64) error {
	if err := checkDType("Scale", t); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("scale", "fwd", t), n, new(Args).Ptr(out).Ptr(x).F32(alpha).I64(n))
}

// Axpy sets y += alpha * x over n float32 elements.
func (d *Device) Axpy(s Stream, y, x Ptr, alpha float32, n int64) error {
	return d.launch1D(s, "axpy_fwd_f32", n, new(Args).Ptr(y).Ptr(x).F32(alpha).I64(n))
}

func checkRows(op string, R, C int) error {
	if R < 0 || C <= 0 || R > 1<<31-1 {
		return badArg("%s: rows=%d cols=%d", op, R, C)
	}
	return nil
}

// normKernel names an RMSNorm kernel for storage t and weight type wt: wt
// is t, or F32 with BF16 storage (the _w32_ kernels: Gemma's float32
// (1 + w) with bf16 activations).
func normKernel(op, pass string, t, wt DType) (string, error) {
	switch {
	case wt == t:
		return kernelName(op, pass, t), nil
	case t == BF16 && wt == F32:
		return kernelName(op+"_w32", pass, t), nil
	}
	return "", badArg("%s: weight %v with %v storage (the storage type, or F32 with BF16)", op, wt, t)
}

// RMSNormFwd normalises the R rows of x [R,C]: y = x * rstd * w, storing
// rstd [R] float32 for the backward; w is of type wt (see normKernel).
func (d *Device) RMSNormFwd(s Stream, t, wt DType, y, rstd, x, w Ptr, R, C int, eps float32) error {
	if err := checkRows("RMSNormFwd", R, C); err != nil {
		return err
	}
	name, err := normKernel("rmsnorm", "fwd", t, wt)
	if err != nil || R == 0 {
		return err
	}
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{R, 1, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(y).Ptr(rstd).Ptr(x).Ptr(w).Int(C).F32(eps))
}

// RMSNormBwd sets dx (=) and, when dw != 0, accumulates dw += (float32 [C]).
func (d *Device) RMSNormBwd(s Stream, t, wt DType, dx, dw, dy, x, w, rstd Ptr, R, C int) error {
	if err := checkRows("RMSNormBwd", R, C); err != nil {
		return err
	}
	name, err := normKernel("rmsnorm", "bwd", t, wt)
	if err != nil || R == 0 {
		return err
	}
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	if err := f.Launch(s, Dim3{R, 1, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(dx).Ptr(dy).Ptr(x).Ptr(w).Ptr(rstd).Int(C)); err != nil {
		return err
	}
	if dw == 0 {
		return nil
	}
	g, err := d.Kernel("rmsnorm_dw_bwd_" + t.String())
	if err != nil {
		return err
	}
	return g.Launch(s, Dim3{(C + 31) / 32, (R + 255) / 256, 1}, Dim3{32, 8, 1}, 0, new(Args).Ptr(dw).Ptr(dy).Ptr(x).Ptr(rstd).Int(R).Int(C))
}

// RoPE rotates x [N,H,D] in place by the angles of positions pos [N] (int32)
// from the tables cos, sin [maxPos, D/2]; backward applies the inverse
// rotation (to a gradient).
func (d *Device) RoPE(s Stream, t DType, backward bool, x, pos, cos, sin Ptr, N, H, D int) error {
	if N < 0 || H <= 0 || D <= 0 || D%2 != 0 {
		return badArg("RoPE: N=%d H=%d D=%d (D must be even)", N, H, D)
	}
	dir := "fwd"
	if backward {
		dir = "bwd"
	}
	pairs := int64(N) * int64(H) * int64(D/2)
	return d.launch1D(s, kernelName("rope", dir, t), pairs, new(Args).Ptr(x).Ptr(pos).Ptr(cos).Ptr(sin).I64(int64(N)).Int(H).Int(D))
}

// SwiGLUFwd sets out = silu(g) * u over n elements.
func (d *Device) SwiGLUFwd(s Stream, t DType, out, g, u Ptr, n int64) error {
	return d.launch1D(s, kernelName("swiglu", "fwd", t), n, new(Args).Ptr(out).Ptr(g).Ptr(u).I64(n))
}

// SwiGLUBwd sets dg and du (=) from dout; dg, du may alias g, u.
func (d *Device) SwiGLUBwd(s Stream, t DType, dg, du, dout, g, u Ptr, n int64) error {
	return d.launch1D(s, kernelName("swiglu", "bwd", t), n, new(Args).Ptr(dg).Ptr(du).Ptr(dout).Ptr(g).Ptr(u).I64(n))
}

// EmbeddingFwd gathers out[i,:] = table[ids[i],:] for N ids (int32) from
// table [V,C]; an id outside [0,V) gives a zero row.
func (d *Device) EmbeddingFwd(s Stream, t DType, out, table, ids Ptr, N, V, C int) error {
	if N < 0 || V <= 0 || C <= 0 {
		return badArg("EmbeddingFwd: N=%d V=%d C=%d", N, V, C)
	}
	if N == 0 {
		return nil
	}
	f, err := d.Kernel(kernelName("embedding", "fwd", t))
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{N, 1, 1}, Dim3{min(256, (C+31)/32*32), 1, 1}, 0, new(Args).Ptr(out).Ptr(table).Ptr(ids).Int(V).Int(C))
}

// EmbeddingBwd scatters dtable[ids[i],:] += dout[i,:] into the float32
// dtable [V,C] (atomics: repeated ids sum in any order).
func (d *Device) EmbeddingBwd(s Stream, t DType, dtable, dout, ids Ptr, N, V, C int) error {
	if N < 0 || V <= 0 || C <= 0 {
		return badArg("EmbeddingBwd: N=%d V=%d C=%d", N, V, C)
	}
	if N == 0 {
		return nil
	}
	f, err := d.Kernel(kernelName("embedding", "bwd", t))
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{N, 1, 1}, Dim3{min(256, (C+31)/32*32), 1, 1}, 0, new(Args).Ptr(dtable).Ptr(dout).Ptr(ids).Int(V).Int(C))
}

// NF4Dequant expands n NF4 codes (packed two per byte, high nibble first)
// with one float32 absmax per blocksize elements into out (f32 or bf16).
func (d *Device) NF4Dequant(s Stream, t DType, out, packed, absmax Ptr, n int64, blocksize int) error {
	if n < 0 || blocksize <= 0 {
		return badArg("NF4Dequant: n=%d blocksize=%d", n, blocksize)
	}
	return d.launch1D(s, kernelName("nf4_dequant", "fwd", t), (n+7)/8, new(Args).Ptr(out).Ptr(packed).Ptr(absmax).I64(n).Int(blocksize))
}
