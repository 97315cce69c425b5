package cuda

import (
	"fmt"
	"math"
	"testing"
)

// attentionRef is the float64 reference: causal GQA attention with a key
// padding mask (nil = none) and, when a.Softcap is set, scores capped to
// c·tanh(s/c) (the gradient through the cap is 1 − tanh²), materialising
// the T x T scores per head. It
// returns O, lse ([B,Hq,T]; +Inf for a query that sees no key) and, given
// dO, the gradients dQ, dK, dV. Beside each output it returns the size of
// the terms summed into it (the m* slices), the scale of float32 rounding:
// ds = p (dp - delta) cancels, and its error scales with |dp| + |delta|
// term by term, not with the result.
func attentionRef(q, k, v, dO []float32, mask []int32, a AttentionShape) (o, lse, dq, dk, dv, mo, mdq, mdk, mdv []float64) {
	B, T, Hq, Hkv, D := a.B, a.T, a.Hq, a.Hkv, a.D
	G := Hq / Hkv
	o, dq, mo, mdq = make([]float64, B*T*Hq*D), make([]float64, B*T*Hq*D), make([]float64, B*T*Hq*D), make([]float64, B*T*Hq*D)
	dk, dv, mdk, mdv = make([]float64, B*T*Hkv*D), make([]float64, B*T*Hkv*D), make([]float64, B*T*Hkv*D), make([]float64, B*T*Hkv*D)
	lse = make([]float64, B*Hq*T)
	sc := float64(a.Scale)
	qi := func(b, t, h, d int) int { return ((b*T+t)*Hq+h)*D + d }
	ki := func(b, t, h, d int) int { return ((b*T+t)*Hkv+h)*D + d }
	p := make([]float64, T)
	dp := make([]float64, T)
	dpMag := make([]float64, T)
	slope := make([]float64, T)
	cap := float64(a.Softcap)
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			hk := h / G
			for i := 0; i < T; i++ {
				m := math.Inf(-1)
				for j := 0; j <= i; j++ {
					p[j] = math.Inf(-1)
					if mask != nil && mask[b*T+j] == 0 {
						continue
					}
					var s float64
					for d := 0; d < D; d++ {
						s += float64(q[qi(b, i, h, d)]) * float64(k[ki(b, j, hk, d)])
					}
					p[j], slope[j] = s*sc, 1
					if cap != 0 {
						th := math.Tanh(p[j] / cap)
						p[j], slope[j] = cap*th, 1-th*th
					}
					m = math.Max(m, p[j])
				}
				if math.IsInf(m, -1) {
					lse[(b*Hq+h)*T+i] = math.Inf(1)
					continue
				}
				var sum float64
				for j := 0; j <= i; j++ {
					p[j] = math.Exp(p[j] - m)
					sum += p[j]
				}
				lse[(b*Hq+h)*T+i] = m + math.Log(sum)
				var delta float64
				for j := 0; j <= i; j++ {
					p[j] /= sum
					dp[j], dpMag[j] = 0, 0
					for d := 0; d < D; d++ {
						vv, g := float64(v[ki(b, j, hk, d)]), float64(dO[qi(b, i, h, d)])
						o[qi(b, i, h, d)] += p[j] * vv
						mo[qi(b, i, h, d)] += p[j] * math.Abs(vv)
						dp[j] += g * vv
						dpMag[j] += math.Abs(g * vv)
					}
					delta += p[j] * dp[j]
				}
				var deltaMag float64
				for d := 0; d < D; d++ {
					deltaMag += math.Abs(float64(dO[qi(b, i, h, d)])) * mo[qi(b, i, h, d)]
				}
				for j := 0; j <= i; j++ {
					ds := p[j] * (dp[j] - delta) * slope[j]
					dsMag := p[j] * (dpMag[j] + deltaMag) * slope[j]
					for d := 0; d < D; d++ {
						kv, qv, g := float64(k[ki(b, j, hk, d)]), float64(q[qi(b, i, h, d)]), float64(dO[qi(b, i, h, d)])
						dq[qi(b, i, h, d)] += sc * ds * kv
						mdq[qi(b, i, h, d)] += sc * dsMag * math.Abs(kv)
						dk[ki(b, j, hk, d)] += sc * ds * qv
						mdk[ki(b, j, hk, d)] += sc * dsMag * math.Abs(qv)
						dv[ki(b, j, hk, d)] += p[j] * g
						mdv[ki(b, j, hk, d)] += p[j] * math.Abs(g)
					}
				}
			}
		}
	}
	return
}

type attnCase struct {
	B, T, Hq, Hkv, D int
	pad              string // "", "right" (lengths), "left" (leading pads: queries that see nothing)
}

var attnCases = []attnCase{
	{1, 1, 1, 1, 32, ""}, {2, 37, 4, 2, 64, "right"}, {1, 100, 6, 2, 128, "left"},
	{3, 17, 2, 2, 96, ""}, {1, 65, 8, 1, 64, "right"},
}

// attnCasesFor is attnCases, with fewer heads in the two largest cases
// under the simulator (same T, D, padding and a GQA group of 3 and 4).
func attnCasesFor() []attnCase {
	if !Simulated {
		return attnCases
	}
	cs := append([]attnCase(nil), attnCases...)
	cs[2].Hq, cs[2].Hkv = 3, 1
	cs[4].Hq = 4
	return cs
}

func TestAttention(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, c := range attnCasesFor() {
			name := fmt.Sprintf("%v/B%d_T%d_Hq%d_Hkv%d_D%d_%s", dt, c.B, c.T, c.Hq, c.Hkv, c.D, c.pad)
			t.Run(name, func(t *testing.T) { testAttention(t, g, dt, c, 0, name) })
		}
	}
}

// TestAttentionSoftcap runs the capped kernels (attention_softcap_*) on the
// same cases: cap 1.5 bends most scores (they are ~N(0,1) at scale
// 1/√D), cap 50 (Gemma 2's) hardly any, so both the tanh and its slope in
// the backward are exercised. Tolerances as TestAttention's: the cap is a
// float32 tanhf (2 ulp) of a float32 score.
func TestAttentionSoftcap(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for i, c := range attnCasesFor() {
			cap := float32(1.5)
			if i%2 == 1 {
				cap = 50
			}
			name := fmt.Sprintf("%v/B%d_T%d_Hq%d_Hkv%d_D%d_%s_cap%g", dt, c.B, c.T, c.Hq, c.Hkv, c.D, c.pad, cap)
			t.Run(name, func(t *testing.T) { testAttention(t, g, dt, c, cap, name) })
		}
	}
}

// testAttention runs one case through the tiled kernels, capped when cap is
// not 0, against attentionRef.
func testAttention(t *testing.T, g *gpu, dt DType, c attnCase, cap float32, name string) {
	a := AttentionShape{B: c.B, T: c.T, Hq: c.Hq, Hkv: c.Hkv, D: c.D, Scale: float32(1 / math.Sqrt(float64(c.D))), Softcap: cap}
	op := "attention"
	if cap != 0 {
		op = "attention_softcap"
	}
	nq, nk := c.B*c.T*c.Hq*c.D, c.B*c.T*c.Hkv*c.D
	q, k, v, dO := g.randn(nq, 1, dt), g.randn(nk, 1, dt), g.randn(nk, 1, dt), g.randn(nq, 1, dt)
	var mask []int32
	if c.pad != "" {
		mask = make([]int32, c.B*c.T)
		for b := 0; b < c.B; b++ {
			n := c.T - g.rng.IntN(c.T/2+1) // real tokens in this row
			for t := 0; t < c.T; t++ {
				real := t < n
				if c.pad == "left" {
					real = t >= c.T-n
				}
				if real {
					mask[b*c.T+t] = 1
				}
			}
		}
		a.Mask = g.upI32(mask)
	}
	pq, pk, pv, pdo := g.up(q, dt), g.up(k, dt), g.up(v, dt), g.up(dO, dt)
	po, plse := g.alloc(nq*dt.Size()), g.alloc(c.B*c.Hq*c.T*4)
	pdq, pdk, pdv, pdelta := g.alloc(nq*dt.Size()), g.alloc(nk*dt.Size()), g.alloc(nk*dt.Size()), g.alloc(c.B*c.Hq*c.T*4)
	g.ok(g.d.AttentionFwd(g.s, dt, po, plse, pq, pk, pv, a))
	g.ok(g.d.AttentionBwd(g.s, dt, pdq, pdk, pdv, pdelta, pdo, po, plse, pq, pk, pv, a))
	o, lse, dq, dk, dv, mo, mdq, mdk, mdv := attentionRef(q, k, v, dO, mask, a)
	// f32: float32 sums, 1e-5 of the summed terms' size. bf16: inputs
	// exact, outputs rounded once (2^-9), and O rounded before the backward
	// reuses it in delta: 1e-2.
	tl := tol{1e-7, 1e-5}
	if dt == BF16 {
		tl = tol{1e-4, 1e-2}
	}
	compare(t, op+"_fwd_"+name, g.down(po, nq, dt), o, mo, tl)
	compare(t, op+"_fwd_"+name+"/lse", g.down(plse, c.B*c.Hq*c.T, F32), lse, lseMag(lse), tol{1e-5, 1e-5})
	compare(t, op+"_dq_bwd_"+name, g.down(pdq, nq, dt), dq, mdq, tl)
	compare(t, op+"_dkv_bwd_"+name+"/dk", g.down(pdk, nk, dt), dk, mdk, tl)
	compare(t, op+"_dkv_bwd_"+name+"/dv", g.down(pdv, nk, dt), dv, mdv, tl)
}
