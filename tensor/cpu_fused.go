package tensor

import (
	"fmt"
	"math"
)

// window returns the tensor's own elements of its storage.
func window[T float](t *Tensor) []T {
	if t == nil {
		return nil
	}
	return floats[T](t)[t.offset : t.offset+t.Numel()]
}

func (c *CPUBackend) RMSNorm(dst, invRMS, x, w *Tensor, eps float64) error {
	if err := CheckRMSNorm(dst, invRMS, x, w); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dst, invRMS, x, w)
	if err != nil {
		return err
	}
	if dt == F32 {
		n, dim := Rows(x)
		rmsnormF32(window[float32](dst), window[float32](invRMS), window[float32](x), window[float32](w), n, dim, eps)
	} else {
		n, dim := Rows(x)
		rmsnormRows(window[float64](dst), window[float64](invRMS), window[float64](x), window[float64](w), n, dim, eps)
	}
	return nil
}

func rmsnormRows[T float](d, inv, x, w []T, n, dim int, eps float64) {
	for r := 0; r < n; r++ {
		row := x[r*dim : (r+1)*dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		ir := 1 / math.Sqrt(ss/float64(dim)+eps)
		inv[r] = T(ir)
		out := d[r*dim : (r+1)*dim]
		for j, v := range row {
			// Hugging Face rounds x·r to the compute dtype before the weight.
			y := T(float64(v) * ir)
			if w != nil {
				y *= w[j]
			}
			out[j] = y
		}
	}
}

func (c *CPUBackend) RMSNormBackward(dx, dw, dy, x, w, invRMS *Tensor) error {
	if err := CheckRMSNormBackward(dx, dw, dy, x, w, invRMS); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dx, dw, dy, x, w, invRMS)
	if err != nil {
		return err
	}
	if dt == F32 {
		n, dim := Rows(x)
		rmsnormBwdF32(window[float32](dx), window[float32](dw), nil, window[float32](dy), window[float32](x), window[float32](w), window[float32](invRMS), n, dim)
	} else {
		n, dim := Rows(x)
		rmsnormBwdRows(window[float64](dx), window[float64](dw), nil, window[float64](dy), window[float64](x), window[float64](w), window[float64](invRMS), n, dim)
	}
	return nil
}

// rmsnormBwdRows: with g = w·dy, dx = r·g − r³/D·x·Σ(g·x) (+ dh, the
// residual gradient of AddRMSNorm, when dh is not nil); dw += Σ_rows dy·x·r.
func rmsnormBwdRows[T float](dx, dw, dh, dy, x, w, inv []T, n, dim int) {
	for r := 0; r < n; r++ {
		xr, gr, ir := x[r*dim:(r+1)*dim], dy[r*dim:(r+1)*dim], float64(inv[r])
		var dot float64
		for j := range xr {
			g := float64(gr[j])
			if w != nil {
				g *= float64(w[j])
			}
			dot += g * float64(xr[j])
		}
		k := ir * ir * ir * dot / float64(dim)
		for j := range xr {
			g := float64(gr[j])
			if w != nil {
				g *= float64(w[j])
			}
			if dx != nil {
				dx[r*dim+j] = T(ir*g - k*float64(xr[j]))
				if dh != nil {
					dx[r*dim+j] += dh[r*dim+j]
				}
			}
			if dw != nil {
				dw[j] += T(float64(gr[j]) * float64(xr[j]) * ir)
			}
		}
	}
}

func (c *CPUBackend) RoPE(dst, x, cos, sin *Tensor, inverse bool) error {
	if err := CheckRoPE(dst, x, cos, sin); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dst, x, cos, sin)
	if err != nil {
		return err
	}
	if dt == F32 {
		d, xs, cs, sn := window[float32](dst), window[float32](x), window[float32](cos), window[float32](sin)
		B, T, H, D := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
		parallelRange(B*T, H*D, func(_, lo, hi int) {
			rope(d[lo*H*D:hi*H*D], xs[lo*H*D:hi*H*D], cs[lo*D/2:hi*D/2], sn[lo*D/2:hi*D/2], Shape{1, hi - lo, H, D}, inverse)
		})
	} else {
		rope[float64](window[float64](dst), window[float64](x), window[float64](cos), window[float64](sin), x.shape, inverse)
	}
	return nil
}

func rope[T float](d, x, cs, sn []T, s Shape, inverse bool) {
	B, Tn, H, D := s[0], s[1], s[2], s[3]
	half := D / 2
	for bt := 0; bt < B*Tn; bt++ {
		c, si := cs[bt*half:(bt+1)*half], sn[bt*half:(bt+1)*half]
		for h := 0; h < H; h++ {
			o := (bt*H + h) * D
			for j := 0; j < half; j++ {
				x1, x2 := x[o+j], x[o+half+j]
				sv := si[j]
				if inverse {
					sv = -sv
				}
				d[o+j] = x1*c[j] - x2*sv
				d[o+half+j] = x2*c[j] + x1*sv
			}
		}
	}
}

func (c *CPUBackend) SwiGLU(dst, gate, up *Tensor) error {
	if err := CheckSwiGLU(dst, gate, up); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dst, gate, up)
	if err != nil {
		return err
	}
	if dt == F32 {
		swigluF32(window[float32](dst), window[float32](gate), window[float32](up))
	} else {
		swiglu[float64](window[float64](dst), window[float64](gate), window[float64](up))
	}
	return nil
}

func swiglu[T float](d, g, u []T) {
	for i := range d {
		gv := float64(g[i])
		// torch computes silu(g) in the dtype, then multiplies.
		d[i] = T(gv*sigmoid(gv)) * u[i]
	}
}

func (c *CPUBackend) SwiGLUBackward(dgate, dup, dy, gate, up *Tensor) error {
	if err := CheckSwiGLUBackward(dgate, dup, dy, gate, up); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dgate, dup, dy, gate, up)
	if err != nil {
		return err
	}
	if dt == F32 {
		swigluBwdF32(window[float32](dgate), window[float32](dup), window[float32](dy), window[float32](gate), window[float32](up))
	} else {
		swigluBwd[float64](window[float64](dgate), window[float64](dup), window[float64](dy), window[float64](gate), window[float64](up))
	}
	return nil
}

func swigluBwd[T float](dg, du, dy, g, u []T) {
	for i := range dy {
		gv := float64(g[i])
		s := sigmoid(gv)
		if du != nil {
			du[i] = T(float64(dy[i]) * gv * s)
		}
		if dg != nil {
			dg[i] = T(float64(dy[i]) * float64(u[i]) * s * (1 + gv*(1-s)))
		}
	}
}

// intsOf reads a contiguous integer tensor (ids, labels, masks) as ints.
func intsOf(t *Tensor) ([]int, error) {
	s := t.st.(*cpuStorage)
	out := make([]int, t.Numel())
	switch s.dt {
	case I32:
		for i := range out {
			out[i] = int(s.i32[t.offset+i])
		}
	case I64:
		for i := range out {
			out[i] = int(s.i64[t.offset+i])
		}
	default:
		return nil, fmt.Errorf("cpu: integer tensor of dtype %v (I32 or I64 expected)", s.dt)
	}
	return out, nil
}

func (c *CPUBackend) Embedding(dst, table, ids *Tensor) error {
	V, D, err := CheckEmbedding(dst, table, ids)
	if err != nil {
		return cpuErr(err)
	}
	idx, err := intsOf(ids)
	if err != nil {
		return err
	}
	ts, ds := table.st.(*cpuStorage), dst.st.(*cpuStorage)
	for i, id := range idx {
		if id < 0 || id >= V {
			return fmt.Errorf("cpu: Embedding: token id %d at position %d outside vocabulary of %d", id, i, V)
		}
		src, o := table.offset+id*D, dst.offset+i*D
		switch {
		case ts.dt == F32 && ds.dt == F32:
			copy(ds.f32[o:o+D], ts.f32[src:src+D])
		case ts.dt == BF16 && ds.dt == F32:
			for j := 0; j < D; j++ {
				ds.f32[o+j] = BF16ToF32(ts.u16[src+j])
			}
		default:
			for j := 0; j < D; j++ {
				ds.set(o+j, ts.get(src+j))
			}
		}
	}
	return nil
}

func (c *CPUBackend) EmbeddingBackward(dtable, dy, ids *Tensor) error {
	V, D, err := CheckEmbeddingBackward(dtable, dy, ids)
	if err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dtable, dy)
	if err != nil {
		return err
	}
	idx, err := intsOf(ids)
	if err != nil {
		return err
	}
	for i, id := range idx {
		if id < 0 || id >= V {
			return fmt.Errorf("cpu: EmbeddingBackward: id %d outside %d", id, V)
		}
		if dt == F32 {
			g, s := window[float32](dtable), window[float32](dy)
			for j := 0; j < D; j++ {
				g[id*D+j] += s[i*D+j]
			}
		} else {
			g, s := window[float64](dtable), window[float64](dy)
			for j := 0; j < D; j++ {
				g[id*D+j] += s[i*D+j]
			}
		}
	}
	return nil
}

func (c *CPUBackend) CrossEntropy(loss, dlogits, logits, labels *Tensor, ignoreIndex int, scale float32) error {
	_, v, err := CheckCrossEntropy(loss, dlogits, logits, labels)
	if err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(loss, dlogits, logits)
	if err != nil {
		return err
	}
	lab, err := intsOf(labels)
	if err != nil {
		return err
	}
	if dt == F32 {
		return crossEntropyF32(window[float32](loss), window[float32](dlogits), window[float32](logits), lab, v, ignoreIndex, float64(scale))
	}
	return crossEntropy[float64](window[float64](loss), window[float64](dlogits), window[float64](logits), lab, v, ignoreIndex, float64(scale))
}

func crossEntropy[T float](loss, dl, x []T, lab []int, v, ignore int, scale float64) error {
	for r, l := range lab {
		row := x[r*v : (r+1)*v]
		if l == ignore {
			loss[r] = 0
			if dl != nil {
				clear(dl[r*v : (r+1)*v])
			}
			continue
		}
		if l < 0 || l >= v {
			return errLabel(l, r, v)
		}
		lse := logSumExp(row)
		loss[r] = T(lse - float64(row[l]))
		if dl != nil {
			g := dl[r*v : (r+1)*v]
			for j, e := range row {
				g[j] = T(scale * math.Exp(float64(e)-lse))
			}
			g[l] -= T(scale)
		}
	}
	return nil
}

func errLabel(l, r, v int) error {
	return fmt.Errorf("cpu: CrossEntropy: label %d at row %d outside vocabulary of %d", l, r, v)
}
