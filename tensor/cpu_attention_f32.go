package tensor

import (
	"math"

	"github.com/ftune/ftune/kernels/asm"
)

// Float32 attention on the CPU, blocked over queries so every inner loop is
// a GEMM: for each (batch, head) the queries are taken tb rows at a time,
// scores = scale·Q·Kᵀ for the keys the block can see, masked, turned into
// probabilities in place, and O = P·V. Memory is one tb×S score block per
// worker; the backward recomputes P from the saved log-sum-exp. The float64
// path (attention/attentionBwd) is the plain reference these are tested
// against.

const attnBlock = 64

// headRows copies the [S,D] rows of head h out of a [B,S,H,D] tensor.
func headRows(dst, src []float32, b, h, S, H, D int) {
	for s := 0; s < S; s++ {
		o := ((b*S+s)*H + h) * D
		copy(dst[s*D:(s+1)*D], src[o:o+D])
	}
}

// visibleKeys is how many leading keys any query of rows [t0, t1) can see
// (causal attention never looks past the last query's position).
func (m *attnMask) visibleKeys(t1 int) int {
	if !m.p.Causal {
		return m.S
	}
	return min(m.S, t1+m.p.QueryOffset)
}

// maskRowRange prepares a score row for the exp that follows: the keys
// query t may see are row[lo:hi) (an interval for causal, window, padding
// at the ends and packed documents stored as contiguous runs); everything
// outside is zeroed, so only the visible part is exponentiated (the vector
// exp is several times slower on −Inf). A key inside the interval that is
// still masked (padding in the middle, a document split in several runs)
// is set to −Inf, so the result is exact for any mask.
func (m *attnMask) maskRowRange(row []float32, b, t int) (lo, hi int) {
	pos := t + m.p.QueryOffset
	lo, hi = 0, len(row)
	if m.p.Causal {
		hi = min(hi, pos+1)
	}
	if m.p.Window > 0 {
		lo = max(lo, pos-m.p.Window+1)
	}
	if m.runs != nil && m.runs[b].contiguous {
		r := m.runs[b]
		q := m.S - m.T + t
		lo, hi = max(lo, r.start[q]), min(hi, r.end[q])
	}
	if hi <= lo {
		clear(row)
		return 0, 0
	}
	clear(row[:lo])
	clear(row[hi:])
	if m.keep != nil || (m.segments != nil && !m.runs[b].contiguous) {
		any := false
		for s := lo; s < hi; s++ {
			if m.allowed(b, t, s) {
				any = true
			} else {
				row[s] = float32(math.Inf(-1))
			}
		}
		if !any {
			clear(row)
			return 0, 0
		}
	}
	return lo, hi
}

func attentionF32(out, lse, q, k, v []float32, d attnDims, m *attnMask) {
	scale := m.p.Scale
	// One task per (batch, query head), not per KV head: with few KV heads
	// (SmolLM2: 3 for a batch of 1) that would leave cores idle. Each task
	// gathers its KV head's rows itself; the copy is small next to the GEMMs.
	parallelFor(d.B*d.Hq, func(bh int) {
		b, h := bh/d.Hq, bh%d.Hq
		kh := h / d.group
		K := make([]float32, d.S*d.D)
		V := make([]float32, d.S*d.D)
		headRows(K, k, b, kh, d.S, d.Hkv, d.D)
		headRows(V, v, b, kh, d.S, d.Hkv, d.D)
		Q := make([]float32, attnBlock*d.D)
		P := make([]float32, attnBlock*d.S)
		O := make([]float32, attnBlock*d.D)
		for t0 := 0; t0 < d.T; t0 += attnBlock {
			tb := min(attnBlock, d.T-t0)
			S := m.visibleKeys(t0 + tb)
			for i := 0; i < tb; i++ {
				o := ((b*d.T+t0+i)*d.Hq + h) * d.D
				copy(Q[i*d.D:(i+1)*d.D], q[o:o+d.D])
			}
			if S > 0 {
				asm.Sgemm(false, true, tb, S, d.D, scale, Q, d.D, K, d.D, 0, P, S)
			}
			for i := 0; i < tb; i++ {
				row := P[i*S : (i+1)*S]
				li := (b*d.Hq+h)*d.T + t0 + i
				lo, hi := 0, 0
				if S > 0 {
					lo, hi = m.maskRowRange(row, b, t0+i)
				}
				if hi == 0 {
					clear(row)
					lse[li] = float32(math.Inf(-1))
					continue
				}
				row = row[lo:hi] // the rest is already 0
				mx := asm.Max(row)
				for j := range row {
					row[j] -= mx
				}
				asm.Exp(row, row)
				sum := asm.Sum(row)
				asm.Scale(1/sum, row)
				lse[li] = mx + float32(math.Log(float64(sum)))
			}
			if S > 0 {
				asm.Sgemm(false, false, tb, d.D, S, 1, P, S, V, d.D, 0, O, d.D)
			} else {
				clear(O[:tb*d.D])
			}
			for i := 0; i < tb; i++ {
				o := ((b*d.T+t0+i)*d.Hq + h) * d.D
				copy(out[o:o+d.D], O[i*d.D:(i+1)*d.D])
			}
		}
	})
}

func attentionBwdF32(dq, dk, dv, dout, out, lse, q, k, v []float32, d attnDims, m *attnMask) {
	scale := m.p.Scale
	// One task per (batch, query head), as in the forward; each writes the
	// dK, dV of its own query head into a private slot, and the query heads
	// of a group are summed into dk, dv afterwards in head order (the same
	// order the serial loop used), so the result does not depend on the
	// schedule.
	hs := d.S * d.D
	dKh := make([]float32, d.B*d.Hq*hs)
	dVh := make([]float32, d.B*d.Hq*hs)
	parallelFor(d.B*d.Hq, func(bh int) {
		b, h := bh/d.Hq, bh%d.Hq
		kh := h / d.group
		K := make([]float32, hs)
		V := make([]float32, hs)
		headRows(K, k, b, kh, d.S, d.Hkv, d.D)
		headRows(V, v, b, kh, d.S, d.Hkv, d.D)
		dK := dKh[bh*hs : (bh+1)*hs]
		dV := dVh[bh*hs : (bh+1)*hs]
		Q := make([]float32, attnBlock*d.D)
		dO := make([]float32, attnBlock*d.D)
		dQ := make([]float32, attnBlock*d.D)
		P := make([]float32, attnBlock*d.S)
		dP := make([]float32, attnBlock*d.S)
		for t0 := 0; t0 < d.T; t0 += attnBlock {
			tb := min(attnBlock, d.T-t0)
			S := m.visibleKeys(t0 + tb)
			for i := 0; i < tb; i++ {
				o := ((b*d.T+t0+i)*d.Hq + h) * d.D
				copy(Q[i*d.D:(i+1)*d.D], q[o:o+d.D])
				copy(dO[i*d.D:(i+1)*d.D], dout[o:o+d.D])
			}
			if S == 0 {
				for i := 0; i < tb; i++ {
					o := ((b*d.T+t0+i)*d.Hq + h) * d.D
					clear(dq[o : o+d.D])
				}
				continue
			}
			// P = exp(scale·Q·Kᵀ − lse), recomputed; masked entries 0.
			asm.Sgemm(false, true, tb, S, d.D, scale, Q, d.D, K, d.D, 0, P, S)
			// dP = dO·Vᵀ
			asm.Sgemm(false, true, tb, S, d.D, 1, dO, d.D, V, d.D, 0, dP, S)
			for i := 0; i < tb; i++ {
				row, drow := P[i*S:(i+1)*S], dP[i*S:(i+1)*S]
				li := (b*d.Hq+h)*d.T + t0 + i
				l := lse[li]
				lo, hi := 0, 0
				if !math.IsInf(float64(l), -1) {
					lo, hi = m.maskRowRange(row, b, t0+i)
				}
				if hi == 0 {
					clear(row)
					clear(drow)
					continue
				}
				clear(drow[:lo])
				clear(drow[hi:])
				row, drow = row[lo:hi], drow[lo:hi]
				for j := range row {
					row[j] -= l
				}
				asm.Exp(row, row)
				o := ((b*d.T+t0+i)*d.Hq + h) * d.D
				delta := asm.Dot(dout[o:o+d.D], out[o:o+d.D])
				// dS = P·(dP − delta)·scale, written over dP.
				for j, p := range row {
					drow[j] = p * (drow[j] - delta) * scale
				}
			}
			// dQ = dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO
			asm.Sgemm(false, false, tb, d.D, S, 1, dP, S, K, d.D, 0, dQ, d.D)
			asm.Sgemm(true, false, S, d.D, tb, 1, dP, S, Q, d.D, 1, dK, d.D)
			asm.Sgemm(true, false, S, d.D, tb, 1, P, S, dO, d.D, 1, dV, d.D)
			for i := 0; i < tb; i++ {
				o := ((b*d.T+t0+i)*d.Hq + h) * d.D
				copy(dq[o:o+d.D], dQ[i*d.D:(i+1)*d.D])
			}
		}
	})
	parallelFor(d.B*d.Hkv, func(bk int) {
		b, kh := bk/d.Hkv, bk%d.Hkv
		h0 := b*d.Hq + kh*d.group
		for s := 0; s < d.S; s++ {
			o := ((b*d.S+s)*d.Hkv + kh) * d.D
			dko, dvo := dk[o:o+d.D], dv[o:o+d.D]
			copy(dko, dKh[h0*hs+s*d.D:h0*hs+(s+1)*d.D])
			copy(dvo, dVh[h0*hs+s*d.D:h0*hs+(s+1)*d.D])
			for h := h0 + 1; h < h0+d.group; h++ {
				asm.Add(dko, dko, dKh[h*hs+s*d.D:h*hs+(s+1)*d.D])
				asm.Add(dvo, dvo, dVh[h*hs+s*d.D:h*hs+(s+1)*d.D])
			}
		}
	})
}
