package tensor

import (
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// Float32 fused ops through kernels/asm's vectorised exp, silu and row
// reductions; the generic (float64-accumulating) versions in cpu_fused.go
// are their references in the conformance suite.

func swigluF32(d, g, u []float32) { asm.SwiGLU(d, g, u) }

// swigluBwdF32: with σ = 1/(1+e^−g), dup = dy·g·σ and
// dgate = dy·up·σ·(1 + g·(1−σ)).
func swigluBwdF32(dg, du, dy, g, u []float32) {
	const chunk = 1024
	var sig [chunk]float32
	for o := 0; o < len(dy); o += chunk {
		n := min(chunk, len(dy)-o)
		s := sig[:n]
		for i := range s {
			s[i] = -g[o+i]
		}
		asm.Exp(s, s)
		for i := range s {
			sv := 1 / (1 + s[i])
			gv := g[o+i]
			if du != nil {
				du[o+i] = dy[o+i] * gv * sv
			}
			if dg != nil {
				dg[o+i] = dy[o+i] * u[o+i] * sv * (1 + gv*(1-sv))
			}
		}
	}
}

func rmsnormF32(d, inv, x, w []float32, rows, dim int, eps float64) {
	for r := 0; r < rows; r++ {
		inv[r] = asm.RMSNormRow(d[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim], w, float32(eps))
	}
}

func crossEntropyF32(loss, dl, x []float32, lab []int, v, ignore int, scale float64) error {
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
			return errLabel(l, r, v)
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
