package tensor

import (
	"math"
	"runtime"
	"sync"

	"github.com/ftune/ftune/kernels/asm"
)

// attnMask answers whether query t (0-based among the T queries) of batch
// row b may see key s.
type attnMask struct {
	p    AttentionParams
	S, T int
	keep []int // [B*S] key mask, nil = all
	// kept, with keep, is each batch row's kept keys as an interval: a
	// row padded at its ends (right padding, left padding) keeps
	// [lo, hi), so maskRowRange clamps to it instead of testing every key.
	kept     []keptRange
	segments []int // [B*S] document ids, nil = one document
	// runs, with segments, gives for each key the run of equal document
	// ids it belongs to, so a query's visible keys are an interval.
	runs []segmentRuns
}

// segmentRuns are the maximal runs of equal ids in one batch row:
// key s lies in [start[s], end[s]); contiguous says no id has two runs.
type segmentRuns struct {
	start, end []int
	contiguous bool
}

func newSegmentRuns(seg []int) segmentRuns {
	r := segmentRuns{start: make([]int, len(seg)), end: make([]int, len(seg)), contiguous: true}
	seen := map[int]bool{}
	for i := 0; i < len(seg); {
		j := i
		for j < len(seg) && seg[j] == seg[i] {
			j++
		}
		if seen[seg[i]] {
			r.contiguous = false
		}
		seen[seg[i]] = true
		for k := i; k < j; k++ {
			r.start[k], r.end[k] = i, j
		}
		i = j
	}
	return r
}

// keptRange is the keys a batch row's key mask keeps, [lo, hi) when
// contiguous (every key outside is masked, every key inside kept).
type keptRange struct {
	lo, hi     int
	contiguous bool
}

func newKeptRange(keep []int) keptRange {
	lo, hi := 0, len(keep)
	for lo < hi && keep[lo] == 0 {
		lo++
	}
	for hi > lo && keep[hi-1] == 0 {
		hi--
	}
	r := keptRange{lo: lo, hi: hi, contiguous: true}
	for _, k := range keep[lo:hi] {
		if k == 0 {
			r.contiguous = false
			break
		}
	}
	return r
}

func newAttnMask(p AttentionParams, B, T, S int) (*attnMask, error) {
	m := &attnMask{p: p, S: S, T: T}
	var err error
	if p.KeyMask != nil {
		if m.keep, err = maskInts(p.KeyMask); err != nil {
			return nil, err
		}
		m.kept = make([]keptRange, B)
		for b := range m.kept {
			m.kept[b] = newKeptRange(m.keep[b*S : (b+1)*S])
		}
	}
	if p.Segments != nil {
		if m.segments, err = maskInts(p.Segments); err != nil {
			return nil, err
		}
		m.runs = make([]segmentRuns, B)
		for b := range m.runs {
			m.runs[b] = newSegmentRuns(m.segments[b*S : (b+1)*S])
		}
	}
	return m, nil
}

func maskInts(t *Tensor) ([]int, error) {
	if t.dtype == F32 || t.dtype == F64 {
		v := t.F64()
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out, nil
	}
	return intsOf(t.Contiguous())
}

func (m *attnMask) allowed(b, t, s int) bool {
	pos := t + m.p.QueryOffset
	if m.p.Causal && s > pos {
		return false
	}
	if m.p.Window > 0 && pos-s >= m.p.Window {
		return false
	}
	if m.keep != nil && m.keep[b*m.S+s] == 0 {
		return false
	}
	if m.segments != nil && m.segments[b*m.S+s] != m.segments[b*m.S+(m.S-m.T)+t] {
		return false
	}
	return true
}

// parallelFor runs fn(i) for i in [0,n) on up to GOMAXPROCS goroutines.
func parallelFor(n int, fn func(i int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// attnDims adds the query-head group size to the checked dimensions.
type attnDims struct {
	AttentionDims
	group int
}

// attentionGemm is the product the attention kernels run: bf16 operands on
// CPUBF16, float32 otherwise.
func (c *CPUBackend) attentionGemm() serialGemm {
	if c.bf16MatMul {
		return asm.GemmBF16DotSerial
	}
	return asm.SgemmSerial
}

func (c *CPUBackend) Attention(out, lse, q, k, v *Tensor, p AttentionParams) error {
	ad, err := CheckAttention(out, lse, q, k, v, p)
	if err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(out, lse, q, k, v)
	if err != nil {
		return err
	}
	d := attnDims{ad, ad.Group()}
	m, err := newAttnMask(p, d.B, d.T, d.S)
	if err != nil {
		return err
	}
	if dt == F32 {
		attentionF32(window[float32](out), window[float32](lse), window[float32](q), window[float32](k), window[float32](v), d, m, c.attentionGemm())
	} else {
		attention[float64](window[float64](out), window[float64](lse), window[float64](q), window[float64](k), window[float64](v), d, m)
	}
	return nil
}

func attention[T float](out, lse, q, k, v []T, d attnDims, m *attnMask) {
	scale := float64(m.p.Scale)
	parallelFor(d.B*d.Hq, func(bh int) {
		b, h := bh/d.Hq, bh%d.Hq
		kh := h / d.group
		scores := make([]float64, d.S)
		acc := make([]float64, d.D)
		for t := 0; t < d.T; t++ {
			qo := ((b*d.T+t)*d.Hq + h) * d.D
			qr := q[qo : qo+d.D]
			mx := math.Inf(-1)
			for s := 0; s < d.S; s++ {
				if !m.allowed(b, t, s) {
					scores[s] = math.Inf(-1)
					continue
				}
				ko := ((b*d.S+s)*d.Hkv + kh) * d.D
				var dot float64
				for j, x := range qr {
					dot += float64(x) * float64(k[ko+j])
				}
				scores[s] = softcap(dot*scale, float64(m.p.Softcap))
				mx = math.Max(mx, scores[s])
			}
			o := out[qo : qo+d.D]
			li := (b*d.Hq+h)*d.T + t
			if math.IsInf(mx, -1) { // nothing visible: zero output
				clear(o)
				lse[li] = T(math.Inf(-1))
				continue
			}
			var sum float64
			clear(acc)
			for s := 0; s < d.S; s++ {
				if math.IsInf(scores[s], -1) {
					continue
				}
				e := math.Exp(scores[s] - mx)
				sum += e
				vo := ((b*d.S+s)*d.Hkv + kh) * d.D
				for j := range acc {
					acc[j] += e * float64(v[vo+j])
				}
			}
			for j := range o {
				o[j] = T(acc[j] / sum)
			}
			lse[li] = T(mx + math.Log(sum))
		}
	})
}

func (c *CPUBackend) AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v *Tensor, p AttentionParams) error {
	ad, err := CheckAttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, p)
	if err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dq, dk, dv, dout, out, lse, q, k, v)
	if err != nil {
		return err
	}
	d := attnDims{ad, ad.Group()}
	m, err := newAttnMask(p, d.B, d.T, d.S)
	if err != nil {
		return err
	}
	if dt == F32 {
		attentionBwdF32(window[float32](dq), window[float32](dk), window[float32](dv), window[float32](dout), window[float32](out), window[float32](lse), window[float32](q), window[float32](k), window[float32](v), d, m, c.attentionGemm())
	} else {
		attentionBwd[float64](window[float64](dq), window[float64](dk), window[float64](dv), window[float64](dout), window[float64](out), window[float64](lse), window[float64](q), window[float64](k), window[float64](v), d, m)
	}
	return nil
}

// attentionBwd recomputes each probability row from lse (no T×S matrix is
// kept): p = exp(s−lse), dp = dO·v, ds = p·(dp − dO·O) (·(1 − tanh²) with a
// soft-cap, s being the capped score); dq = scale·Σ ds·k,
// dk += scale·ds·q, dv += p·dO. Work is split by (batch, KV head) so the
// query heads sharing one KV head accumulate without races.
func attentionBwd[T float](dq, dk, dv, dout, out, lse, q, k, v []T, d attnDims, m *attnMask) {
	scale := float64(m.p.Scale)
	parallelFor(d.B*d.Hkv, func(bk int) {
		b, kh := bk/d.Hkv, bk%d.Hkv
		gk := make([]float64, d.S*d.D)
		gv := make([]float64, d.S*d.D)
		gq := make([]float64, d.D)
		for h := kh * d.group; h < (kh+1)*d.group; h++ {
			for t := 0; t < d.T; t++ {
				qo := ((b*d.T+t)*d.Hq + h) * d.D
				l := float64(lse[(b*d.Hq+h)*d.T+t])
				clear(gq)
				if math.IsInf(l, -1) {
					clear(dq[qo : qo+d.D])
					continue
				}
				var delta float64
				for j := 0; j < d.D; j++ {
					delta += float64(dout[qo+j]) * float64(out[qo+j])
				}
				for s := 0; s < d.S; s++ {
					if !m.allowed(b, t, s) {
						continue
					}
					ko := ((b*d.S+s)*d.Hkv + kh) * d.D
					var dot, dp float64
					for j := 0; j < d.D; j++ {
						dot += float64(q[qo+j]) * float64(k[ko+j])
						dp += float64(dout[qo+j]) * float64(v[ko+j])
					}
					capped := softcap(dot*scale, float64(m.p.Softcap))
					pr := math.Exp(capped - l)
					ds := pr * (dp - delta) * scale * softcapSlope(capped, float64(m.p.Softcap))
					for j := 0; j < d.D; j++ {
						gq[j] += ds * float64(k[ko+j])
						gk[s*d.D+j] += ds * float64(q[qo+j])
						gv[s*d.D+j] += pr * float64(dout[qo+j])
					}
				}
				for j := 0; j < d.D; j++ {
					dq[qo+j] = T(gq[j])
				}
			}
		}
		for s := 0; s < d.S; s++ {
			ko := ((b*d.S+s)*d.Hkv + kh) * d.D
			for j := 0; j < d.D; j++ {
				dk[ko+j] = T(gk[s*d.D+j])
				dv[ko+j] = T(gv[s*d.D+j])
			}
		}
	})
}
