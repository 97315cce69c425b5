package cuda

import (
	"math"
	"testing"
)

// TestAddRMSNorm: add_rmsnorm_{fwd,bwd} (and the _w32_ kernels: a float32
// weight with bf16 storage) against a float64 reference, on
// ragged sizes (rows and columns that are not multiples of the block), with
// every output buffer NaN-poisoned (an unwritten element fails). The
// reference normalises h rounded to the storage type, which is what the
// kernel (and the unfused add, which stores h) normalises. Tolerances are
// TestRMSNorm's: float32 arithmetic against float64 (1e-5 relative for
// reassociated row sums and rsqrtf), bf16's unit roundoff for bf16 outputs
// (1e-2 relative); dx is judged at the size of its terms (dh, the two
// norm-backward terms), which cancel.
func TestAddRMSNorm(t *testing.T) {
	g := needGPU(t)
	for _, ty := range normTypes {
		dt, wt := ty[0], ty[1]
		for _, sz := range [][2]int{{1, 1}, {3, 31}, {7, 257}, {65, 576}, {513, 64}} {
			R, C := sz[0], sz[1]
			name := normName(dt, wt, R, C)
			a, b, w := g.randn(R*C, 1.5, dt), g.randn(R*C, 1, dt), g.randn(C, 1, wt)
			dy, dh := g.randn(R*C, 1, dt), g.randn(R*C, 1, dt)
			pa, pb, pw, pdy, pdh := g.up(a, dt), g.up(b, dt), g.up(w, wt), g.up(dy, dt), g.up(dh, dt)
			ph, py, prs, pdx := g.alloc(R*C*dt.Size()), g.alloc(R*C*dt.Size()), g.alloc(R*4), g.alloc(R*C*dt.Size())
			dw0 := g.randn(C, 1, F32) // dw accumulates onto what is there
			pdw := g.up(dw0, F32)
			g.ok(g.d.AddRMSNormFwd(g.s, dt, wt, ph, py, prs, pa, pb, pw, R, C, 1e-5))
			g.ok(g.d.AddRMSNormBwd(g.s, dt, wt, pdx, pdw, pdh, pdy, ph, pw, prs, R, C))

			hExact, hStored := make([]float64, R*C), make([]float32, R*C)
			for i := range hExact {
				hExact[i] = float64(a[i]) + float64(b[i])
				hStored[i] = float32(hExact[i])
			}
			if dt == BF16 {
				hStored = fromBF16s(toBF16s(hStored))
			}
			y, rs, dx, dxMag, dw := rmsnormRef(hStored, w, dy, R, C, 1e-5)
			for i := range dx {
				dx[i] += float64(dh[i])
				dxMag[i] += math.Abs(float64(dh[i]))
			}
			for j := range dw {
				dw[j] += float64(dw0[j])
			}
			compare(t, "add_rmsnorm_fwd_"+name+"/h", g.down(ph, R*C, dt), hExact, nil, tolFor(dt))
			compare(t, "add_rmsnorm_fwd_"+name+"/y", g.down(py, R*C, dt), y, nil, tolFor(dt))
			if wt != dt && R*C >= 10000 {
				checkOneRounding(t, "add_rmsnorm_fwd_"+name+"/y", g.down(py, R*C, dt), y)
			}
			compare(t, "add_rmsnorm_fwd_"+name+"/rstd", g.down(prs, R, F32), rs, nil, tolF32)
			compare(t, "add_rmsnorm_bwd_"+name, g.down(pdx, R*C, dt), dx, dxMag, tolFor(dt))
			compare(t, "add_rmsnorm_bwd_"+name+"/dw", g.down(pdw, C, F32), dw, nil, tol{1e-5 * math.Sqrt(float64(R)), 1e-5})
		}
	}
}
