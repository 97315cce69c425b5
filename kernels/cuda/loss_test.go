package cuda

import (
	"fmt"
	"math"
	"testing"
)

// crossEntropyRef: float64 lse, per-row loss, mean and logit gradient.
func crossEntropyRef(x []float32, targets []int32, N, V int) (lse, loss []float64, mean float64, grad []float64) {
	lse, loss, grad = make([]float64, N), make([]float64, N), make([]float64, N*V)
	count := 0
	for _, y := range targets {
		if y >= 0 && int(y) < V {
			count++
		}
	}
	inv := 0.0
	if count > 0 {
		inv = 1 / float64(count)
	}
	for r := 0; r < N; r++ {
		m := math.Inf(-1)
		for j := 0; j < V; j++ {
			m = math.Max(m, float64(x[r*V+j]))
		}
		var s float64
		for j := 0; j < V; j++ {
			s += math.Exp(float64(x[r*V+j]) - m)
		}
		lse[r] = m + math.Log(s)
		y := int(targets[r])
		if y < 0 || y >= V {
			continue
		}
		loss[r] = lse[r] - float64(x[r*V+y])
		mean += loss[r] * inv
		for j := 0; j < V; j++ {
			g := math.Exp(float64(x[r*V+j]) - lse[r])
			if j == y {
				g--
			}
			grad[r*V+j] = g * inv
		}
	}
	return
}

func TestCrossEntropy(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, sz := range [][3]int{{1, 1, 1}, {3, 10, 10}, {37, 1000, 256}, {64, 5003, 5003}, {16, 32001, 4096}} {
			N, V, Vc := sz[0], sz[1], sz[2]
			x := g.randn(N*V, 3, dt)
			targets := make([]int32, N)
			count := 0
			for i := range targets {
				targets[i] = int32(g.rng.IntN(V))
				if i%5 == 2 {
					targets[i] = IgnoreIndex
				} else {
					count++
				}
			}
			inv := float32(0)
			if count > 0 {
				inv = 1 / float32(count)
			}
			px, pt := g.up(x, dt), g.upI32(targets)
			pm, ps, ptg, plse, ploss := g.alloc(N*4), g.alloc(N*4), g.alloc(N*4), g.alloc(N*4), g.alloc(N*4)
			psum := g.alloc(4)
			g.ok(g.d.Memset32(psum, 0, 1))
			pdx := g.alloc(N * V * dt.Size())
			g.ok(g.d.CrossEntropyInit(g.s, pm, ps, N))
			for v0 := 0; v0 < V; v0 += Vc {
				vc := min(Vc, V-v0)
				g.ok(g.d.CrossEntropyFwd(g.s, dt, px.Add(v0*dt.Size()), V, v0, vc, N, pt, pm, ps, ptg))
			}
			g.ok(g.d.CrossEntropyLoss(g.s, N, V, pt, pm, ps, ptg, plse, ploss, psum, inv))
			for v0 := 0; v0 < V; v0 += Vc {
				vc := min(Vc, V-v0)
				off := v0 * dt.Size()
				g.ok(g.d.CrossEntropyBwd(g.s, dt, pdx.Add(off), px.Add(off), V, v0, vc, N, V, pt, plse, inv))
			}
			lse, loss, mean, grad := crossEntropyRef(x, targets, N, V)
			name := fmt.Sprintf("%v/N%d_V%d_chunk%d", dt, N, V, Vc)
			// Inputs are exact in both dtypes; the loss is float32 math on them
			// (expf/logf, a sum over V): 1e-5 relative to the lse scale.
			compare(t, "crossentropy_fwd_"+name+"/lse", g.down(plse, N, F32), lse, nil, tol{1e-5, 1e-5})
			compare(t, "crossentropy_loss_fwd_"+name, g.down(ploss, N, F32), loss, lseMag(lse), tol{1e-5, 1e-5})
			compare(t, "crossentropy_loss_fwd_"+name+"/mean", g.down(psum, 1, F32), []float64{mean}, nil, tol{1e-5, 1e-5})
			// Gradient entries are probabilities/count: compare at the scale of
			// the row's largest entry (inv), bf16 at one rounding.
			mag := make([]float64, len(grad))
			for i := range mag {
				mag[i] = float64(inv)
			}
			tl := tol{0, 1e-5}
			if dt == BF16 {
				tl = tol{0, 1e-2}
			}
			compare(t, "crossentropy_bwd_"+name, g.down(pdx, N*V, dt), grad, mag, tl)
		}
	}
}

func lseMag(lse []float64) []float64 {
	m := make([]float64, len(lse))
	for i, v := range lse {
		m[i] = math.Abs(v) + 1
	}
	return m
}
