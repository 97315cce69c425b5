package cuda

import (
	"fmt"
	"math"
	"testing"
)

// adamwRef is one PyTorch AdamW step in float64 on (p, m, v) with gradient
// g*scale. mm and mv are the magnitudes of the terms summed into m and v
// (b1 m + (1-b1) g can cancel: its float32 error scales with the terms).
func adamwRef(p, g, m, v []float32, scale float64, c AdamWConfig) (np, nm, nv, mm, mv []float64) {
	np, nm, nv = make([]float64, len(p)), make([]float64, len(p)), make([]float64, len(p))
	mm, mv = make([]float64, len(p)), make([]float64, len(p))
	b1, b2 := float64(c.Beta1), float64(c.Beta2)
	bc1 := 1 - math.Pow(b1, float64(c.Step))
	bc2 := 1 - math.Pow(b2, float64(c.Step))
	for i := range p {
		gi := float64(g[i]) * scale
		nm[i] = b1*float64(m[i]) + (1-b1)*gi
		nv[i] = b2*float64(v[i]) + (1-b2)*gi*gi
		mm[i] = math.Abs(b1*float64(m[i])) + math.Abs((1-b1)*gi)
		mv[i] = nv[i]
		pi := float64(p[i])
		np[i] = pi - float64(c.LR)*(float64(c.WeightDecay)*pi+(nm[i]/bc1)/(math.Sqrt(nv[i]/bc2)+float64(c.Eps)))
	}
	return
}

func TestGradNormAdamW(t *testing.T) {
	g := needGPU(t)
	sizes := []int64{1, 255, 4096, 70001, 3, 1 << 18}
	cfg := AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 7}
	for _, maxNorm := range []float32{0, 1, 1e6} {
		var ps, gs, ms, vs []Ptr
		var hp, hg, hm, hv [][]float32
		var sumsq float64
		for _, n := range sizes {
			p, gr := g.randn(int(n), 1, F32), g.randn(int(n), 0.1, F32)
			m := g.randn(int(n), 0.01, F32)
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(math.Abs(g.rng.NormFloat64()) * 1e-4)
			}
			for _, x := range gr {
				sumsq += float64(x) * float64(x)
			}
			hp, hg, hm, hv = append(hp, p), append(hg, gr), append(hm, m), append(hv, v)
			ps, gs, ms, vs = append(ps, g.up(p, F32)), append(gs, g.up(gr, F32)), append(ms, g.up(m, F32)), append(vs, g.up(v, F32))
		}
		l, err := g.d.NewTensorList(ps, gs, ms, vs, sizes)
		g.ok(err)
		defer l.Free()
		psum, pnorm, pscale := g.alloc(4), g.alloc(4), g.alloc(4)
		g.ok(g.d.GradNorm(g.s, l, psum, pnorm, pscale, maxNorm))
		g.ok(g.d.AdamW(g.s, l, pscale, cfg))
		norm := math.Sqrt(sumsq)
		scale := 1.0
		if maxNorm > 0 {
			scale = math.Min(1, float64(maxNorm)/(norm+1e-6))
		}
		name := fmt.Sprintf("maxnorm%g", maxNorm)
		// The norm sums ~340k squares with float32 atomics: 1e-5 relative.
		compare(t, "gradnorm_fwd_f32/"+name, g.down(pnorm, 1, F32), []float64{norm}, nil, tol{0, 1e-5})
		compare(t, "clipscale_fwd_f32/"+name, g.down(pscale, 1, F32), []float64{scale}, nil, tol{0, 1e-5})
		for i, n := range sizes {
			wp, wm, wv, mm, mv := adamwRef(hp[i], hg[i], hm[i], hv[i], scale, cfg)
			tn := fmt.Sprintf("adamw_fwd_f32/%s/t%d_n%d", name, i, n)
			// The update is lr * O(1): its float32 error sits at the scale of
			// lr, not of p, so p is judged with an absolute term of 1e-5*lr.
			compare(t, tn+"/p", g.down(ps[i], int(n), F32), wp, nil, tol{1e-5 * float64(cfg.LR), 1e-6})
			compare(t, tn+"/m", g.down(ms[i], int(n), F32), wm, mm, tol{0, 1e-5})
			compare(t, tn+"/v", g.down(vs[i], int(n), F32), wv, mv, tol{0, 1e-5})
		}
	}
}
