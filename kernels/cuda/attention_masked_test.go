package cuda

import (
	"fmt"
	"math"
	"testing"
)

// maskedRef is the float64 reference of attention_masked.cu: it
// materialises every score row (the slow, obvious way), capped to
// c·tanh(s/c) when a.Softcap is set, and returns O, lse and the gradients
// for dO (through the cap's slope 1 − tanh²).
type maskedRef struct {
	a                         MaskedAttention
	keymask, seg              []int32
	q, k, v, do               []float32
	o, lse, dq, dk, dv        []float64
	omag, dqmag, dkmag, dvmag []float64
}

func (r *maskedRef) visible(b, t, s int) bool {
	a := r.a
	p := t + a.QueryOffset
	if a.Causal && s > p {
		return false
	}
	if a.Window > 0 && p-s >= a.Window {
		return false
	}
	if r.keymask != nil && r.keymask[b*a.S+s] == 0 {
		return false
	}
	if r.seg != nil && r.seg[b*a.S+s] != r.seg[b*a.S+a.S-a.T+t] {
		return false
	}
	return true
}

func (r *maskedRef) run() {
	a := r.a
	G := a.Hq / a.Hkv
	r.o = make([]float64, a.B*a.T*a.Hq*a.D)
	r.omag = make([]float64, len(r.o))
	r.dq = make([]float64, len(r.o))
	r.dqmag = make([]float64, len(r.o))
	r.lse = make([]float64, a.B*a.Hq*a.T)
	r.dk = make([]float64, a.B*a.S*a.Hkv*a.D)
	r.dv = make([]float64, len(r.dk))
	r.dkmag = make([]float64, len(r.dk))
	r.dvmag = make([]float64, len(r.dk))
	qo := func(b, t, h int) int { return ((b*a.T+t)*a.Hq + h) * a.D }
	ko := func(b, s, h int) int { return ((b*a.S+s)*a.Hkv + h) * a.D }
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.Hq; h++ {
			kh := h / G
			for t := 0; t < a.T; t++ {
				p := make([]float64, a.S)
				slope := make([]float64, a.S)
				mx := math.Inf(-1)
				for s := range p {
					p[s] = math.Inf(-1)
					if !r.visible(b, t, s) {
						continue
					}
					dot := 0.0
					for j := 0; j < a.D; j++ {
						dot += float64(r.q[qo(b, t, h)+j]) * float64(r.k[ko(b, s, kh)+j])
					}
					p[s], slope[s] = dot*float64(a.Scale), 1
					if c := float64(a.Softcap); c != 0 {
						th := math.Tanh(p[s] / c)
						p[s], slope[s] = c*th, 1-th*th
					}
					mx = math.Max(mx, p[s])
				}
				li := (b*a.Hq+h)*a.T + t
				if math.IsInf(mx, -1) {
					r.lse[li] = math.Inf(-1)
					continue
				}
				z := 0.0
				for s := range p {
					z += math.Exp(p[s] - mx)
				}
				r.lse[li] = mx + math.Log(z)
				delta := 0.0
				for s := range p {
					p[s] = math.Exp(p[s] - r.lse[li])
					for j := 0; j < a.D; j++ {
						r.o[qo(b, t, h)+j] += p[s] * float64(r.v[ko(b, s, kh)+j])
						r.omag[qo(b, t, h)+j] += p[s] * math.Abs(float64(r.v[ko(b, s, kh)+j]))
					}
				}
				// deltaMag bounds delta's terms, as in attention_test.go: the
				// kernel's delta reads its own rounded O, and with bf16 that
				// rounding (relative to the terms, not to a cancelling
				// delta) reaches dq and dk.
				deltaMag := 0.0
				for j := 0; j < a.D; j++ {
					delta += float64(r.do[qo(b, t, h)+j]) * r.o[qo(b, t, h)+j]
					deltaMag += math.Abs(float64(r.do[qo(b, t, h)+j])) * r.omag[qo(b, t, h)+j]
				}
				for s := range p {
					if p[s] == 0 {
						continue
					}
					dp := 0.0
					for j := 0; j < a.D; j++ {
						dp += float64(r.do[qo(b, t, h)+j]) * float64(r.v[ko(b, s, kh)+j])
					}
					ds := p[s] * (dp - delta) * slope[s] * float64(a.Scale)
					dsm := p[s] * (math.Abs(dp) + deltaMag) * slope[s] * float64(a.Scale)
					for j := 0; j < a.D; j++ {
						r.dq[qo(b, t, h)+j] += ds * float64(r.k[ko(b, s, kh)+j])
						r.dqmag[qo(b, t, h)+j] += dsm * math.Abs(float64(r.k[ko(b, s, kh)+j]))
						r.dk[ko(b, s, kh)+j] += ds * float64(r.q[qo(b, t, h)+j])
						r.dkmag[ko(b, s, kh)+j] += dsm * math.Abs(float64(r.q[qo(b, t, h)+j]))
						r.dv[ko(b, s, kh)+j] += p[s] * float64(r.do[qo(b, t, h)+j])
						r.dvmag[ko(b, s, kh)+j] += p[s] * math.Abs(float64(r.do[qo(b, t, h)+j]))
					}
				}
			}
		}
	}
}

// TestMaskedAttention covers every mask of the kernels (causal with a KV
// offset, window, key padding including a query that sees nothing, packed
// segments, bidirectional) at head sizes that are not multiples of 32 and
// the largest one (256), f32 and bf16 storage, uncapped and soft-capped
// (the attention_masked_softcap_* kernels; cap 1.5 bends most of the
// ~N(0,1) scores, 50 is Gemma 2's). Tolerances as elsewhere
// (float32 vs a float64 reference scaled by the sum of term magnitudes;
// bf16 one rounding of each output).
func TestMaskedAttention(t *testing.T) {
	g := needGPU(t)
	cases := []struct {
		name string
		a    MaskedAttention
		pad  bool
		seg  bool
	}{
		{"causal_offset", MaskedAttention{B: 2, T: 5, S: 9, Hq: 4, Hkv: 2, D: 16, Causal: true, QueryOffset: 4}, false, false},
		{"window_pad", MaskedAttention{B: 2, T: 11, S: 11, Hq: 2, Hkv: 1, D: 40, Causal: true, Window: 4}, true, false},
		{"packed", MaskedAttention{B: 1, T: 13, S: 13, Hq: 3, Hkv: 3, D: 8, Causal: true}, false, true},
		{"bidirectional_pad", MaskedAttention{B: 2, T: 6, S: 6, Hq: 2, Hkv: 2, D: 256}, true, false},
		{"softcap_causal_offset", MaskedAttention{B: 2, T: 5, S: 9, Hq: 4, Hkv: 2, D: 16, Causal: true, QueryOffset: 4, Softcap: 1.5}, false, false},
		{"softcap_window_pad", MaskedAttention{B: 2, T: 11, S: 11, Hq: 2, Hkv: 1, D: 40, Causal: true, Window: 4, Softcap: 1.5}, true, false},
		{"softcap_packed", MaskedAttention{B: 1, T: 13, S: 13, Hq: 3, Hkv: 3, D: 8, Causal: true, Softcap: 50}, false, true},
		{"softcap_bidirectional_pad", MaskedAttention{B: 2, T: 6, S: 6, Hq: 2, Hkv: 2, D: 256, Softcap: 1.5}, true, false},
	}
	for _, c := range cases {
		for _, dt := range dtypes {
			a := c.a
			a.Scale = float32(1 / math.Sqrt(float64(a.D)))
			r := &maskedRef{a: a}
			nq, nk := a.B*a.T*a.Hq*a.D, a.B*a.S*a.Hkv*a.D
			r.q, r.k, r.v, r.do = g.randn(nq, 1, dt), g.randn(nk, 1, dt), g.randn(nk, 1, dt), g.randn(nq, 1, dt)
			if c.pad {
				r.keymask = make([]int32, a.B*a.S)
				for i := range r.keymask {
					r.keymask[i] = 1
				}
				r.keymask[a.S-1], r.keymask[a.S-2] = 0, 0 // row 0 right-padded
				r.keymask[a.S], r.keymask[a.S+1] = 0, 0   // row 1 left-padded: its query 0 sees nothing when causal
				a.KeyMask = g.upI32(r.keymask)
			}
			if c.seg {
				r.seg = make([]int32, a.B*a.S)
				for i := range r.seg {
					r.seg[i] = int32(i / 5)
				}
				a.Segments = g.upI32(r.seg)
			}
			r.a = a
			r.run()
			pq, pk, pv, pdo := g.up(r.q, dt), g.up(r.k, dt), g.up(r.v, dt), g.up(r.do, dt)
			o, lse := g.alloc(nq*dt.Size()), g.alloc(a.B*a.Hq*a.T*4)
			g.ok(g.d.MaskedAttentionFwd(g.s, dt, o, lse, pq, pk, pv, a))
			dq, dk, dv, delta := g.alloc(nq*dt.Size()), g.alloc(nk*dt.Size()), g.alloc(nk*dt.Size()), g.alloc(a.B*a.Hq*a.T*4)
			g.ok(g.d.MaskedAttentionBwd(g.s, dt, dq, dk, dv, delta, pdo, o, lse, pq, pk, pv, a))
			tl := tolFor(dt)
			name := func(what string) string { return fmt.Sprintf("attention_masked_%s_%s/%s", what, dt, c.name) }
			compare(t, name("fwd"), g.down(o, nq, dt), r.o, r.omag, tl)
			compare(t, name("lse_fwd"), g.down(lse, a.B*a.Hq*a.T, F32), r.lse, nil, tolF32)
			// The backward reads the kernel's own (rounded) O; bf16's
			// gradients carry that rounding through delta.
			compare(t, name("dq_bwd"), g.down(dq, nq, dt), r.dq, r.dqmag, tl)
			compare(t, name("dk_bwd"), g.down(dk, nk, dt), r.dk, r.dkmag, tl)
			compare(t, name("dv_bwd"), g.down(dv, nk, dt), r.dv, r.dvmag, tl)
		}
	}
}
