package tensor

import (
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// Float32 fused ops through kernels/asm's vectorised exp, silu and row
// reductions; the generic (float64-accumulating) versions in cpu_fused.go
// are their references in the conformance suite.

func swigluF32(d, g, u []float32) {
	parallelRange(len(d), 1, func(_, lo, hi int) { asm.SwiGLU(d[lo:hi], g[lo:hi], u[lo:hi]) })
}

// swigluBwdF32: with σ = 1/(1+e^−g), dup = dy·g·σ and
// dgate = dy·up·σ·(1 + g·(1−σ)).
func swigluBwdF32(dg, du, dy, g, u []float32) {
	parallelRange(len(dy), 1, func(_, lo, hi int) {
		if dg != nil && du != nil {
			asm.SwiGLUBackward(dg[lo:hi], du[lo:hi], dy[lo:hi], g[lo:hi], u[lo:hi])
			return
		}
		var dgp, dup []float32
		if dg != nil {
			dgp = dg[lo:hi]
		}
		if du != nil {
			dup = du[lo:hi]
		}
		swigluBwdF32Part(dgp, dup, dy[lo:hi], g[lo:hi], u[lo:hi])
	})
}

func swigluBwdF32Part(dg, du, dy, g, u []float32) {
	const chunk = 1024
	var sig [chunk]float32
	for o := 0; o < len(dy); o += chunk {
		n := min(chunk, len(dy)-o)
		// Re-sliced to one length so the loops below run without bounds
		// checks, with the nil tests hoisted out of them.
		s, gc, dyc := sig[:n], g[o:o+n], dy[o:o+n]
		for i, v := range gc {
			s[i] = -v
		}
		asm.Exp(s, s)
		for i := range s {
			s[i] = 1 / (1 + s[i])
		}
		if du != nil {
			duc := du[o : o+n]
			duc = duc[:len(s)]
			for i, sv := range s {
				duc[i] = dyc[i] * gc[i] * sv
			}
		}
		if dg != nil {
			dgc, uc := dg[o:o+n], u[o:o+n]
			dgc, uc = dgc[:len(s)], uc[:len(s)]
			for i, sv := range s {
				gv := gc[i]
				dgc[i] = dyc[i] * uc[i] * sv * (1 + gv*(1-sv))
			}
		}
	}
}

func rmsnormF32(d, inv, x, w []float32, rows, dim int, eps float64) {
	parallelRange(rows, dim, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			inv[r] = asm.RMSNormRow(d[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim], w, float32(eps))
		}
	})
}

// addRMSNormF32 is addRMSNorm row by row with kernels/asm: each row's sum
// is still in cache when RMSNormRow reads it.
func addRMSNormF32(h, y, inv, a, b, w []float32, rows, dim int, eps float64) {
	parallelRange(rows, 2*dim, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			hr := h[r*dim : (r+1)*dim]
			asm.Add(hr, a[r*dim:(r+1)*dim], b[r*dim:(r+1)*dim])
			inv[r] = asm.RMSNormRow(y[r*dim:(r+1)*dim], hr, w, float32(eps))
		}
	})
}

// rmsnormBwdF32 runs the backward on parts of the rows at once; each part accumulates dw into its own buffer,
// added to dw at the end in part order, so the result does not depend on
// scheduling.
func rmsnormBwdF32(dx, dw, dh, dy, x, w, inv []float32, rows, dim int) {
	parts := parallelParts(rows, 3*dim)
	var dws [][]float32
	if dw != nil && parts > 1 {
		dws = make([][]float32, parts)
		for i := range dws {
			dws[i] = make([]float32, dim)
		}
	}
	parallelRange(rows, 3*dim, func(part, lo, hi int) {
		var dxp, dwp, dhp []float32
		if dx != nil {
			dxp = dx[lo*dim : hi*dim]
		}
		if dh != nil {
			dhp = dh[lo*dim : hi*dim]
		}
		if dw != nil {
			dwp = dw
			if dws != nil {
				dwp = dws[part]
			}
		}
		rmsnormBwdRowsF32(dxp, dwp, dhp, dy[lo*dim:hi*dim], x[lo*dim:hi*dim], w, inv[lo:hi], hi-lo, dim)
	})
	for _, p := range dws {
		asm.Add(dw, dw, p)
	}
}

// crossEntropyF32 splits the rows over goroutines; each part has its own
// scratch row, and the first bad label (in row order) is the error.
func crossEntropyF32(loss, dl, x []float32, lab []int, v, ignore int, scale float64) error {
	errs := make([]error, parallelParts(len(lab), v))
	parallelRange(len(lab), v, func(part, lo, hi int) {
		var dlp []float32
		if dl != nil {
			dlp = dl[lo*v : hi*v]
		}
		errs[part] = crossEntropyF32Rows(loss[lo:hi], dlp, x[lo*v:hi*v], lab[lo:hi], lo, v, ignore, scale)
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func crossEntropyF32Rows(loss, dl, x []float32, lab []int, first, v, ignore int, scale float64) error {
	tmp := make([]float32, v)
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
			return errLabel(l, first+r, v)
		}
		mx := asm.Max(row)
		for j, e := range row {
			tmp[j] = e - mx
		}
		asm.Exp(tmp, tmp)
		sum := float64(asm.Sum(tmp))
		lse := float64(mx) + math.Log(sum)
		loss[r] = float32(lse - float64(row[l]))
		if dl != nil {
			g := dl[r*v : (r+1)*v]
			k := float32(scale / sum)
			for j, e := range tmp {
				g[j] = e * k
			}
			g[l] -= float32(scale)
		}
	}
	return nil
}

// rmsnormBwdRowsF32 is rmsnormBwdRows with vector kernels and float32 sums
// (the row dot product has dim terms; its relative error, about
// dim·2⁻²⁴ at worst and √dim·2⁻²⁴ typically, is far below what float32
// activations carry anyway): with g = w·dy and r the inverse RMS,
// dx = r·g − r³/D·x·Σ(g·x) (+ dh, AddRMSNorm's residual gradient, added
// to the row while it is in cache) and dw += Σ_rows dy·x·r.
func rmsnormBwdRowsF32(dx, dw, dh, dy, x, w, inv []float32, n, dim int) {
	g := make([]float32, dim)
	for r := 0; r < n; r++ {
		xr, dyr, ir := x[r*dim:(r+1)*dim], dy[r*dim:(r+1)*dim], inv[r]
		if w != nil {
			asm.Mul(g, dyr, w)
		} else {
			copy(g, dyr)
		}
		if dx != nil {
			k := ir * ir * ir * asm.Dot(g, xr) / float32(dim)
			d := dx[r*dim : (r+1)*dim]
			copy(d, g)
			asm.Scale(ir, d)
			asm.Axpy(-k, xr, d)
			if dh != nil {
				asm.Add(d, d, dh[r*dim:(r+1)*dim])
			}
		}
		if dw != nil {
			asm.Mul(g, dyr, xr)
			asm.Axpy(ir, g, dw)
		}
	}
}
