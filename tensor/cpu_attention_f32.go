package tensor

import (
	"math"
	"sync"

	"github.com/ftune/ftune/kernels/asm"
)

// Float32 attention on the CPU, blocked over queries so every inner loop is
// a GEMM: for each (batch, head) the queries are taken tb rows at a time,
// scores = scale·Q·Kᵀ for the keys the block can see, masked, turned into
// exponentiated in place, and O = P·V divided by the row sums. Memory is
// one tb×S score block per task (pooled); the backward recomputes P from the saved log-sum-exp. The float64
// path (attention/attentionBwd) is the plain reference these are tested
// against.

const attnBlock = 64

// visibleKeys is how many leading keys any query of rows [t0, t1) can see
// (causal attention never looks past the last query's position).
func (m *attnMask) visibleKeys(t1 int) int {
	if !m.p.Causal {
		return m.S
	}
	return min(m.S, t1+m.p.QueryOffset)
}

// maskRowRange prepares a score row for the exp that follows: the keys
// query t may see are row[lo:hi) (an interval for causal, window, a key
// mask that pads the row at its ends and packed documents stored as
// contiguous runs); everything
// outside is zeroed, so only the visible part is exponentiated (the vector
// exp is several times slower on −Inf). A key inside the interval that is
// still masked (padding in the middle, a document split in several runs)
// is set to −Inf, so the result is exact for any mask. With a soft-cap the
// visible scores are capped first (capped scores lie in [−c, c], so a −Inf
// still marks a masked key).
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
	if m.kept != nil && m.kept[b].contiguous {
		lo, hi = max(lo, m.kept[b].lo), min(hi, m.kept[b].hi)
	}
	if hi <= lo {
		clear(row)
		return 0, 0
	}
	clear(row[:lo])
	clear(row[hi:])
	if m.p.Softcap != 0 { // before the −Inf below, which the cap would turn into −c
		asm.Softcap(row[lo:hi], row[lo:hi], m.p.Softcap)
	}
	if (m.keep != nil && !m.kept[b].contiguous) || (m.segments != nil && !m.runs[b].contiguous) {
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

// serialGemm is the attention kernels' matrix product on one goroutine:
// asm.SgemmSerial, or asm.GemmBF16DotSerial on CPUBF16 (the products of
// Q·Kᵀ, P·V and their gradients with bf16-rounded operands, as autocast
// runs them; softmax, the log-sum-exp and the accumulations stay float32).
type serialGemm func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

func attentionF32(out, lse, q, k, v []float32, d attnDims, m *attnMask, gemm serialGemm) {
	scale := m.p.Scale
	ld, ldkv := d.Hq*d.D, d.Hkv*d.D
	// One task per (batch, query head), not per KV head: with few KV heads
	// (SmolLM2: 3 for a batch of 1) that would leave cores idle. The GEMMs
	// read Q, K, V and write O in place in their [B,T,H,D] layout (leading
	// dimension H·D), so no head is copied out.
	split := attnSplit(d.B*d.Hq, d.T)
	parallelFor(d.B*d.Hq*split, func(task int) {
		bh, part := task/split, task%split
		b, h := bh/d.Hq, bh%d.Hq
		kh := h / d.group
		kb := k[b*d.S*ldkv+kh*d.D:]
		vb := v[b*d.S*ldkv+kh*d.D:]
		// The block and its row sums.
		buf := attnScratch(attnBlock*d.S + attnBlock)
		defer attnPool.Put(buf)
		P, inv := (*buf)[:attnBlock*d.S], (*buf)[attnBlock*d.S:attnBlock*d.S+attnBlock]
		for _, t0 := range attnPartBlocks(part, split, d.T) {
			tb := min(attnBlock, d.T-t0)
			S := m.visibleKeys(t0 + tb)
			row0 := ((b*d.T+t0)*d.Hq + h) * d.D
			qb, ob := q[row0:], out[row0:]
			if S == 0 {
				for i := 0; i < tb; i++ {
					clear(ob[i*ld : i*ld+d.D])
					lse[(b*d.Hq+h)*d.T+t0+i] = float32(math.Inf(-1))
				}
				continue // the next block
			}
			gemm(false, true, tb, S, d.D, scale, qb, ld, kb, ldkv, 0, P, S)
			for i := 0; i < tb; i++ {
				row := P[i*S : (i+1)*S]
				li := (b*d.Hq+h)*d.T + t0 + i
				lo, hi := m.maskRowRange(row, b, t0+i)
				if hi == 0 {
					inv[i] = 0
					lse[li] = float32(math.Inf(-1))
					continue
				}
				// Unnormalised probabilities; O's row is divided by
				// their sum after the GEMM (D values instead of S).
				row = row[lo:hi] // the rest is already 0
				mx := asm.Max(row)
				sum := asm.ExpShiftSum(row, row, mx)
				inv[i] = 1 / sum
				lse[li] = mx + float32(math.Log(float64(sum)))
			}
			gemm(false, false, tb, d.D, S, 1, P, S, vb, ldkv, 0, ob, ld)
			for i := 0; i < tb; i++ {
				asm.Scale(inv[i], ob[i*ld:i*ld+d.D])
			}
		}
	})
}

// attnSplit is how many tasks each of the pairs (batch, query head) is
// split into along its queries, so that there are enough tasks to keep the
// cores busy: SmolLM2's 9 heads in a batch of one on 2 cores would leave
// one core idle for a ninth of the time. It depends on the shape alone, not
// on the number of cores, so the order in which the backward sums dK and
// dV (and so its rounding) is the same on every machine.
func attnSplit(pairs, T int) int {
	const minTasks = 32
	blocks := (T + attnBlock - 1) / attnBlock
	return max(1, min(blocks, (minTasks+pairs-1)/pairs))
}

// attnPartBlocks lists the first query of each block of part of split:
// blocks are dealt out zig-zag (parts 0,1,…,s−1,s−1,…,1,0, again), so
// every part gets early blocks, cheap under a causal mask, and late ones.
func attnPartBlocks(part, split, T int) []int {
	var out []int
	for i := 0; i*attnBlock < T; i++ {
		if r := i % (2 * split); r == part || r == 2*split-1-part {
			out = append(out, i*attnBlock)
		}
	}
	return out
}

// attnPool recycles the per-task score blocks of attention: one tb×S block
// per (batch, head) task and layer adds up to gigabytes of garbage a step.
var attnPool = sync.Pool{New: func() any { return new([]float32) }}

// attnScratch returns a pooled buffer of n float32 (contents arbitrary).
func attnScratch(n int) *[]float32 {
	p := attnPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func attentionBwdF32(dq, dk, dv, dout, out, lse, q, k, v []float32, d attnDims, m *attnMask, gemm serialGemm) {
	scale := m.p.Scale
	ld, ldkv := d.Hq*d.D, d.Hkv*d.D
	// One task per (batch, query head), as in the forward; each writes the
	// dK, dV of its own query head into a private slot (transposed), and the
	// query heads of a group are summed into dk, dv afterwards in head
	// order, so the result does not depend on the schedule.
	hs := d.S * d.D
	split := attnSplit(d.B*d.Hq, d.T)
	// Per-task dKᵀ, dVᵀ slots, accumulated into from zero (each task clears
	// its own); pooled, since a step runs this once per layer (tens of MB
	// of garbage otherwise).
	slots := attnScratch(2 * d.B * d.Hq * split * hs)
	defer attnPool.Put(slots)
	dKh, dVh := (*slots)[:d.B*d.Hq*split*hs], (*slots)[d.B*d.Hq*split*hs:]
	parallelFor(d.B*d.Hq*split, func(task int) {
		bh, part := task/split, task%split
		b, h := bh/d.Hq, bh%d.Hq
		kh := h / d.group
		kb := k[b*d.S*ldkv+kh*d.D:]
		vb := v[b*d.S*ldkv+kh*d.D:]
		dKt := dKh[task*hs : (task+1)*hs] // [D,S]: see the GEMMs below
		dVt := dVh[task*hs : (task+1)*hs]
		clear(dKt)
		clear(dVt)
		buf := attnScratch(2 * attnBlock * d.S)
		defer attnPool.Put(buf)
		P, dP := (*buf)[:attnBlock*d.S], (*buf)[attnBlock*d.S:2*attnBlock*d.S]
		for _, t0 := range attnPartBlocks(part, split, d.T) {
			tb := min(attnBlock, d.T-t0)
			S := m.visibleKeys(t0 + tb)
			row0 := ((b*d.T+t0)*d.Hq + h) * d.D
			qb, dob, ob, dqb := q[row0:], dout[row0:], out[row0:], dq[row0:]
			if S == 0 {
				for i := 0; i < tb; i++ {
					clear(dqb[i*ld : i*ld+d.D])
				}
				continue
			}
			// P = exp(scale·Q·Kᵀ − lse) (capped first with a soft-cap),
			// recomputed; masked entries 0.
			gemm(false, true, tb, S, d.D, scale, qb, ld, kb, ldkv, 0, P, S)
			// dP = dO·Vᵀ
			gemm(false, true, tb, S, d.D, 1, dob, ld, vb, ldkv, 0, dP, S)
			for i := 0; i < tb; i++ {
				row, drow := P[i*S:(i+1)*S], dP[i*S:(i+1)*S]
				l := lse[(b*d.Hq+h)*d.T+t0+i]
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
				delta := asm.Dot(dob[i*ld:i*ld+d.D], ob[i*ld:i*ld+d.D])
				// dS = (dP − delta)·scale·P, written over dP; with a
				// soft-cap also ·(1 − tanh²), read from the capped scores
				// still in row.
				asm.SubShift(drow, drow, delta, 0)
				if m.p.Softcap != 0 {
					asm.SoftcapBackward(drow, drow, row, m.p.Softcap)
				}
				asm.ExpShiftSum(row, row, l)
				asm.ScaleMul(drow, drow, row, scale)
			}
			// dQ = dS·K; dKᵀ += Qᵀ·dS; dVᵀ += dOᵀ·P. Accumulating dK and
			// dV transposed ([D,S]) makes the big operand (dS, P) the
			// row-major B of the GEMM, and its small transposed A (the
			// tb×D block) cheap to pack; dS and P as a transposed A cost
			// as much to pack as to multiply.
			gemm(false, false, tb, d.D, S, 1, dP, S, kb, ldkv, 0, dqb, ld)
			gemm(true, false, d.D, S, tb, 1, qb, ld, dP, S, 1, dKt, d.S)
			gemm(true, false, d.D, S, tb, 1, dob, ld, P, S, 1, dVt, d.S)
		}
	})
	parallelFor(d.B*d.Hkv, func(bk int) {
		b, kh := bk/d.Hkv, bk%d.Hkv
		// The group's query heads' slots (and their parts) are adjacent.
		t0 := (b*d.Hq + kh*d.group) * split
		dKt, dVt := dKh[t0*hs:(t0+1)*hs], dVh[t0*hs:(t0+1)*hs]
		for t := t0 + 1; t < t0+d.group*split; t++ {
			asm.Add(dKt, dKt, dKh[t*hs:(t+1)*hs])
			asm.Add(dVt, dVt, dVh[t*hs:(t+1)*hs])
		}
		for s := 0; s < d.S; s++ {
			o := ((b*d.S+s)*d.Hkv + kh) * d.D
			dko, dvo := dk[o:o+d.D], dv[o:o+d.D]
			for j := range dko {
				dko[j] = dKt[j*d.S+s]
				dvo[j] = dVt[j*d.S+s]
			}
		}
	})
}
