package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// Ragged element counts around the 256-thread block and the grid cap.
var elemSizes = []int{1, 255, 256, 257, 1000003}

func TestCastAddScale(t *testing.T) {
	g := needGPU(t)
	for _, n := range elemSizes {
		x := g.randn(n, 3, F32)
		px := g.up(x, F32)
		pb := g.alloc(n * 2)
		g.ok(g.d.Cast(g.s, pb, BF16, px, F32, int64(n)))
		got := g.down(pb, n, BF16)
		want := make([]float64, n)
		for i, v := range x {
			want[i] = float64(half.BF16ToF32(half.F32ToBF16(v))) // round to nearest even, exactly
		}
		compare(t, fmt.Sprintf("cast_bf16_fwd_f32/n%d", n), got, want, nil, tol{})
		pf := g.alloc(n * 4)
		g.ok(g.d.Cast(g.s, pf, F32, pb, BF16, int64(n)))
		compare(t, fmt.Sprintf("cast_f32_fwd_bf16/n%d", n), g.down(pf, n, F32), want, nil, tol{})

		for _, dt := range dtypes {
			a, b := g.randn(n, 1, dt), g.randn(n, 1, dt)
			pa, pbb, out := g.up(a, dt), g.up(b, dt), g.alloc(n*dt.Size())
			g.ok(g.d.Add(g.s, dt, out, pa, pbb, int64(n)))
			sum, scl := make([]float64, n), make([]float64, n)
			for i := range a {
				sum[i] = float64(a[i]) + float64(b[i])
				scl[i] = -0.75 * float64(a[i])
			}
			compare(t, fmt.Sprintf("add_fwd_%v/n%d", dt, n), g.down(out, n, dt), sum, nil, tolFor(dt))
			g.ok(g.d.Scale(g.s, dt, pa, pa, -0.75, int64(n))) // in place
			compare(t, fmt.Sprintf("scale_fwd_%v/n%d", dt, n), g.down(pa, n, dt), scl, nil, tolFor(dt))
		}
		y, xx := g.randn(n, 1, F32), g.randn(n, 1, F32)
		py, pxx := g.up(y, F32), g.up(xx, F32)
		g.ok(g.d.Axpy(g.s, py, pxx, 0.5, int64(n)))
		ax := make([]float64, n)
		for i := range y {
			ax[i] = float64(y[i]) + 0.5*float64(xx[i])
		}
		compare(t, fmt.Sprintf("axpy_fwd_f32/n%d", n), g.down(py, n, F32), ax, nil, tolF32)
	}
}

// rmsnormRef: float64 forward and backward of RMSNorm (see rmsnorm.cu).
// dxMag is, per element, the size of the two terms whose difference is dx
// (they cancel almost exactly when C is small), the scale of its rounding.
func rmsnormRef(x, w, dy []float32, R, C int, eps float64) (y, rstd, dx, dxMag, dw []float64) {
	y, rstd, dx, dw = make([]float64, R*C), make([]float64, R), make([]float64, R*C), make([]float64, C)
	dxMag = make([]float64, R*C)
	for r := 0; r < R; r++ {
		var ss float64
		for j := 0; j < C; j++ {
			v := float64(x[r*C+j])
			ss += v * v
		}
		rs := 1 / math.Sqrt(ss/float64(C)+eps)
		rstd[r] = rs
		var dot, adot float64
		for j := 0; j < C; j++ {
			xv, wv, g := float64(x[r*C+j]), float64(w[j]), float64(dy[r*C+j])
			y[r*C+j] = xv * rs * wv
			dot += wv * g * xv
			adot += math.Abs(wv * g * xv)
			dw[j] += g * xv * rs
		}
		for j := 0; j < C; j++ {
			a := rs * float64(w[j]) * float64(dy[r*C+j])
			xv := float64(x[r*C+j])
			dx[r*C+j] = a - xv*rs*rs*rs*dot/float64(C)
			dxMag[r*C+j] = math.Abs(a) + math.Abs(xv)*rs*rs*rs*adot/float64(C)
		}
	}
	return
}

// normTypes are the storage and weight types of the RMSNorm kernels: the
// weight in the storage type, or float32 with bf16 storage (the _w32_
// kernels).
var normTypes = [][2]DType{{F32, F32}, {BF16, BF16}, {BF16, F32}}

// normName is a test case's name: the storage type, and w32 for a float32
// weight with bf16 storage.
func normName(dt, wt DType, R, C int) string {
	if wt != dt {
		return fmt.Sprintf("w32_%v/R%d_C%d", dt, R, C)
	}
	return fmt.Sprintf("%v/R%d_C%d", dt, R, C)
}

// checkOneRounding: with a float32 weight (not bf16-exact) and bf16
// storage, y must be the float64 reference rounded once to bf16 in nearly
// every element: the kernel computes x·r·w in float32 (a few float32 ulps
// from the reference, which moves a bf16 rounding only when the value is
// within those ulps of a tie: a handful per million), while a kernel that
// rounded w to bf16 first is off by up to half a bf16 ulp of w before the
// final rounding, which changes about a quarter of the elements (26%
// measured). The bound,
// 1%, separates the two by more than an order of magnitude either way.
func checkOneRounding(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	differ := 0
	for i, w := range want {
		if float64(got[i]) != bf16Round64(w) {
			differ++
		}
	}
	t.Logf("%s: %d of %d elements differ from the float64 reference rounded once to bf16", name, differ, len(want))
	if differ > len(want)/100 {
		t.Errorf("%s: %d of %d elements differ from the float64 reference rounded once to bf16 (at most 1%%): is w rounded to bf16?", name, differ, len(want))
	}
}

func TestRMSNorm(t *testing.T) {
	g := needGPU(t)
	for _, ty := range normTypes {
		dt, wt := ty[0], ty[1]
		for _, sz := range [][2]int{{1, 1}, {3, 31}, {7, 257}, {300, 1000}, {513, 64}} {
			R, C := sz[0], sz[1]
			name := normName(dt, wt, R, C)
			x, w, dy := g.randn(R*C, 2, dt), g.randn(C, 1, wt), g.randn(R*C, 1, dt)
			px, pw, pdy := g.up(x, dt), g.up(w, wt), g.up(dy, dt)
			py, prs, pdx := g.alloc(R*C*dt.Size()), g.alloc(R*4), g.alloc(R*C*dt.Size())
			dw0 := g.randn(C, 1, F32) // dw accumulates onto what is there
			pdw := g.up(dw0, F32)
			g.ok(g.d.RMSNormFwd(g.s, dt, wt, py, prs, px, pw, R, C, 1e-5))
			g.ok(g.d.RMSNormBwd(g.s, dt, wt, pdx, pdw, pdy, px, pw, prs, R, C))
			y, rs, dx, dxMag, dw := rmsnormRef(x, w, dy, R, C, 1e-5)
			if wt != dt && R*C >= 10000 {
				checkOneRounding(t, "rmsnorm_fwd_"+name, g.down(py, R*C, dt), y)
			}
			for j := range dw {
				dw[j] += float64(dw0[j])
			}
			compare(t, "rmsnorm_fwd_"+name, g.down(py, R*C, dt), y, nil, tolFor(dt))
			compare(t, "rmsnorm_fwd_"+name+"/rstd", g.down(prs, R, F32), rs, nil, tolF32)
			// dx is a difference of two terms that can cancel: judged at the
			// terms' size (dxMag), which is what float32 rounding scales with.
			compare(t, "rmsnorm_bwd_"+name, g.down(pdx, R*C, dt), dx, dxMag, tolFor(dt))
			compare(t, "rmsnorm_dw_bwd_"+name, g.down(pdw, C, F32), dw, nil, tol{1e-5 * math.Sqrt(float64(R)), 1e-5})
		}
	}
}

func TestRoPE(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, sz := range [][3]int{{1, 1, 2}, {5, 3, 64}, {77, 4, 128}, {33, 7, 96}} {
			N, H, D := sz[0], sz[1], sz[2]
			const maxPos = 200
			half := D / 2
			cosT, sinT := make([]float32, maxPos*half), make([]float32, maxPos*half)
			for p := 0; p < maxPos; p++ {
				for i := 0; i < half; i++ {
					th := float64(p) * math.Pow(10000, -2*float64(i)/float64(D))
					cosT[p*half+i], sinT[p*half+i] = float32(math.Cos(th)), float32(math.Sin(th))
				}
			}
			pos := make([]int32, N)
			for i := range pos {
				pos[i] = int32(g.rng.IntN(maxPos))
			}
			x := g.randn(N*H*D, 1, dt)
			px := g.up(x, dt)
			pp, pc, ps := g.upI32(pos), g.up(cosT, F32), g.up(sinT, F32)
			g.ok(g.d.RoPE(g.s, dt, false, px, pp, pc, ps, N, H, D))
			fwd := g.down(px, N*H*D, dt)
			want, back := make([]float64, N*H*D), make([]float64, N*H*D)
			for n := 0; n < N; n++ {
				for h := 0; h < H; h++ {
					for i := 0; i < half; i++ {
						o := (n*H+h)*D + i
						c, s := float64(cosT[int(pos[n])*half+i]), float64(sinT[int(pos[n])*half+i])
						a, b := float64(x[o]), float64(x[o+half])
						want[o], want[o+half] = a*c-b*s, b*c+a*s
						// The backward of what the kernel produced: the inverse rotation.
						fa, fb := float64(fwd[o]), float64(fwd[o+half])
						back[o], back[o+half] = fa*c+fb*s, fb*c-fa*s
					}
				}
			}
			name := fmt.Sprintf("%v/N%d_H%d_D%d", dt, N, H, D)
			compare(t, "rope_fwd_"+name, fwd, want, nil, tolFor(dt))
			g.ok(g.d.RoPE(g.s, dt, true, px, pp, pc, ps, N, H, D))
			compare(t, "rope_bwd_"+name, g.down(px, N*H*D, dt), back, nil, tolFor(dt))
		}
	}
}

func TestSwiGLU(t *testing.T) {
	g := needGPU(t)
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	for _, dt := range dtypes {
		for _, n := range elemSizes {
			gt, u, dout := g.randn(n, 2, dt), g.randn(n, 1, dt), g.randn(n, 1, dt)
			pg, pu, pd := g.up(gt, dt), g.up(u, dt), g.up(dout, dt)
			out, dg, du := g.alloc(n*dt.Size()), g.alloc(n*dt.Size()), g.alloc(n*dt.Size())
			g.ok(g.d.SwiGLUFwd(g.s, dt, out, pg, pu, int64(n)))
			g.ok(g.d.SwiGLUBwd(g.s, dt, dg, du, pd, pg, pu, int64(n)))
			wo, wg, wu, mg := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range gt {
				x, s := float64(gt[i]), sig(float64(gt[i]))
				wo[i] = x * s * float64(u[i])
				wg[i] = float64(dout[i]) * float64(u[i]) * s * (1 + x*(1-s))
				// 1 + x(1-s) cancels near x = -1.28: rounding scales with its terms.
				mg[i] = math.Abs(float64(dout[i])*float64(u[i])*s) * (1 + math.Abs(x*(1-s)))
				wu[i] = float64(dout[i]) * x * s
			}
			name := fmt.Sprintf("%v/n%d", dt, n)
			compare(t, "swiglu_fwd_"+name, g.down(out, n, dt), wo, nil, tolFor(dt))
			compare(t, "swiglu_bwd_"+name+"/dg", g.down(dg, n, dt), wg, mg, tolFor(dt))
			compare(t, "swiglu_bwd_"+name+"/du", g.down(du, n, dt), wu, nil, tolFor(dt))
		}
	}
}

func TestEmbedding(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, sz := range [][3]int{{1, 1, 1}, {50, 7, 33}, {1000, 500, 257}} {
			N, V, C := sz[0], sz[1], sz[2]
			table, dout := g.randn(V*C, 1, dt), g.randn(N*C, 1, dt)
			ids := make([]int32, N)
			for i := range ids {
				ids[i] = int32(g.rng.IntN(V)) // small V: many repeats
			}
			pt, pd, pi := g.up(table, dt), g.up(dout, dt), g.upI32(ids)
			out := g.alloc(N * C * dt.Size())
			dtab0 := g.randn(V*C, 1, F32)
			pdt := g.up(dtab0, F32)
			g.ok(g.d.EmbeddingFwd(g.s, dt, out, pt, pi, N, V, C))
			g.ok(g.d.EmbeddingBwd(g.s, dt, pdt, pd, pi, N, V, C))
			wf, wb := make([]float64, N*C), f64s(dtab0)
			for i, id := range ids {
				for j := 0; j < C; j++ {
					wf[i*C+j] = float64(table[int(id)*C+j])
					wb[int(id)*C+j] += float64(dout[i*C+j])
				}
			}
			name := fmt.Sprintf("%v/N%d_V%d_C%d", dt, N, V, C)
			compare(t, "embedding_fwd_"+name, g.down(out, N*C, dt), wf, nil, tol{})
			compare(t, "embedding_bwd_"+name, g.down(pdt, V*C, F32), wb, nil, tol{1e-5, 1e-5})
		}
	}
}

// nf4Code is bitsandbytes' NF4 table (must match nf4.cu).
var nf4Code = [16]float64{-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0}

func TestNF4Dequant(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, n := range []int{1, 63, 64, 65, 4097, 100001} {
			const bs = 64
			packed := make([]uint8, (n+1)/2)
			for i := range packed {
				packed[i] = uint8(g.rng.IntN(256))
			}
			absmax := make([]float32, (n+bs-1)/bs)
			for i := range absmax {
				absmax[i] = float32(g.rng.Float64()*2 + 0.01)
			}
			pp := g.alloc(len(packed))
			g.ok(CopyHtoD(g.d, pp, packed))
			pa := g.up(absmax, F32)
			out := g.alloc(n * dt.Size())
			g.ok(g.d.NF4Dequant(g.s, dt, out, pp, pa, int64(n), bs))
			want := make([]float64, n)
			for i := range want {
				q := packed[i/2] >> 4
				if i%2 == 1 {
					q = packed[i/2] & 15
				}
				want[i] = float64(float32(nf4Code[q]) * absmax[i/bs])
			}
			tl := tol{}
			if dt == BF16 {
				tl = tol{0, 1.0 / 256} // one rounding to bf16: at most 2^-8 relative, exactly the bound
			}
			compare(t, fmt.Sprintf("nf4_dequant_fwd_%v/n%d", dt, n), g.down(out, n, dt), want, nil, tl)
		}
	}
}
