package cuda

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Tolerances of the flash kernels (flash_attention.cu), against a float64
// reference that rounds Q, K, V and dO to bf16 as the kernels do while
// staging them. What remains is bf16 rounding inside the kernels:
//   - O and dV: P is rounded to bf16 (at most 2⁻⁸ relative, 0.0039) as the A
//     operand of P·V and Pᵀ·dO, while the row sums use the unrounded P; the
//     error is at most 2⁻⁸ Σ p|v| (Σ p|dO|), the magnitude passed to compare.
//   - dQ and dK: ds = p (dp − δ) is rounded to bf16 before dS·K and dSᵀ·Q:
//     at most 2⁻⁸ Σ |ds||k| ≤ 2⁻⁸ Σ p (|dp| + |δ|) |k| (scaled, sloped).
//   - float32 accumulation of the mma products and expf/logf/tanhf add
//     ~1e-6 of the same magnitudes.
//
// So float32 storage gets rtol 5e-3 of those magnitudes (2⁻⁸ plus float32
// slack); bf16 storage adds one rounding of the output (another 2⁻⁸ of
// |x| ≤ its magnitude): 2⁻⁷ = 0.0078, under tolBF16's 1e-2. lse is float32
// throughout (its sums use the unrounded P): 1e-5 of |lse| plus the largest
// scaled Σ|q k| of the row, which float32 scores' error scales with.
var (
	tolFlashF32 = tol{1e-6, 5e-3}
	tolFlashLSE = tol{1e-6, 1e-5}
)

func tolFlash(t DType) tol {
	if t == BF16 {
		return tolBF16
	}
	return tolFlashF32
}

// roundBF16 returns v rounded to bfloat16 (nearest even), as the kernels
// stage their operands.
func roundBF16(v []float32) []float32 { return fromBF16s(toBF16s(v)) }

// flashRef is the float64 reference of the flash kernels. The masks are
// maskedRef's (visible); q, k, v, do are the bf16-rounded operands the
// kernels compute with, rawDo the stored dO that attention_delta_bwd reads.
type flashRef struct {
	m                               maskedRef
	q, k, v, do, rawDo              []float32
	o, omag, lse, lsemag            []float64
	dq, dk, dv, dqmag, dkmag, dvmag []float64
}

func (r *flashRef) qo(b, t, h int) int {
	a := r.m.a
	return ((b*a.T+t)*a.Hq + h) * a.D
}

func (r *flashRef) ko(b, s, h int) int {
	a := r.m.a
	return ((b*a.S+s)*a.Hkv + h) * a.D
}

// probs returns the softmax row of query (b, t, h) (nil when it sees no
// key), the cap's slopes, lse and the largest scaled Σ|q k| of the row.
func (r *flashRef) probs(b, t, h int) (p, slope []float64, lse, dotmag float64) {
	a := r.m.a
	kh := h / (a.Hq / a.Hkv)
	x := make([]float64, a.S)
	slope = make([]float64, a.S)
	mx := math.Inf(-1)
	for s := range x {
		x[s] = math.Inf(-1)
		if !r.m.visible(b, t, s) {
			continue
		}
		dot, mag := 0.0, 0.0
		for j := 0; j < a.D; j++ {
			qk := float64(r.q[r.qo(b, t, h)+j]) * float64(r.k[r.ko(b, s, kh)+j])
			dot += qk
			mag += math.Abs(qk)
		}
		dotmag = max(dotmag, mag*float64(a.Scale))
		x[s], slope[s] = dot*float64(a.Scale), 1
		if c := float64(a.Softcap); c != 0 {
			th := math.Tanh(x[s] / c)
			x[s], slope[s] = c*th, 1-th*th
		}
		mx = max(mx, x[s])
	}
	if math.IsInf(mx, -1) {
		return nil, slope, math.Inf(-1), 0
	}
	z := 0.0
	for _, xs := range x {
		z += math.Exp(xs - mx)
	}
	lse = mx + math.Log(z)
	for s := range x {
		x[s] = math.Exp(x[s] - lse)
	}
	return x, slope, lse, dotmag
}

func (r *flashRef) forward() {
	a := r.m.a
	r.o = make([]float64, a.B*a.T*a.Hq*a.D)
	r.omag = make([]float64, len(r.o))
	r.lse = make([]float64, a.B*a.Hq*a.T)
	r.lsemag = make([]float64, len(r.lse))
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.Hq; h++ {
			kh := h / (a.Hq / a.Hkv)
			for t := 0; t < a.T; t++ {
				p, _, lse, dotmag := r.probs(b, t, h)
				li := (b*a.Hq+h)*a.T + t
				r.lse[li], r.lsemag[li] = lse, math.Abs(lse)+dotmag
				for s := range p {
					for j := 0; j < a.D; j++ {
						v := float64(r.v[r.ko(b, s, kh)+j])
						r.o[r.qo(b, t, h)+j] += p[s] * v
						r.omag[r.qo(b, t, h)+j] += p[s] * math.Abs(v)
					}
				}
			}
		}
	}
}

// backward computes the gradients for the kernel's own forward output o
// (what the backward reads: delta = Σ dO·o over the stored values).
func (r *flashRef) backward(o []float32) {
	a := r.m.a
	r.dq = make([]float64, a.B*a.T*a.Hq*a.D)
	r.dqmag = make([]float64, len(r.dq))
	r.dk = make([]float64, a.B*a.S*a.Hkv*a.D)
	r.dv = make([]float64, len(r.dk))
	r.dkmag = make([]float64, len(r.dk))
	r.dvmag = make([]float64, len(r.dk))
	sc := float64(a.Scale)
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.Hq; h++ {
			kh := h / (a.Hq / a.Hkv)
			for t := 0; t < a.T; t++ {
				p, slope, _, _ := r.probs(b, t, h)
				qo := r.qo(b, t, h)
				delta := 0.0
				for j := 0; j < a.D; j++ {
					delta += float64(r.rawDo[qo+j]) * float64(o[qo+j])
				}
				for s := range p {
					if p[s] == 0 {
						continue
					}
					ko := r.ko(b, s, kh)
					dp := 0.0
					for j := 0; j < a.D; j++ {
						dp += float64(r.do[qo+j]) * float64(r.v[ko+j])
					}
					ds := p[s] * (dp - delta) * slope[s] * sc
					dsm := p[s] * (math.Abs(dp) + math.Abs(delta)) * slope[s] * sc
					for j := 0; j < a.D; j++ {
						q, k, do := float64(r.q[qo+j]), float64(r.k[ko+j]), float64(r.do[qo+j])
						r.dq[qo+j] += ds * k
						r.dqmag[qo+j] += dsm * math.Abs(k)
						r.dk[ko+j] += ds * q
						r.dkmag[ko+j] += dsm * math.Abs(q)
						r.dv[ko+j] += p[s] * do
						r.dvmag[ko+j] += p[s] * math.Abs(do)
					}
				}
			}
		}
	}
}

// flashCase is one shape and mask set. pad masks the last two keys of
// batch row 0 (right padding) and the first three of row 1 (left padding:
// under a causal mask its first queries see no key); segLen > 0 packs
// documents of that many tokens (the last one shorter).
type flashCase struct {
	name   string
	a      MaskedAttention
	pad    bool
	segLen int
}

// Tile sizes are 64 (forward and dq queries, dkv keys) and 32 (dq keys,
// dkv queries; forward keys at D = 256): the cases cover 0, 1, tile−1, tile,
// tile+1 and sizes that are not multiples of either, every head size the
// kernels take at least once, GQA groups of 1, 2 and 3, each mask alone and
// all together, and caps of 1.5 (bends most scores) and 50 (Gemma 2's).
// At D = 256 (two dkv blocks per key tile, one for each half of D's dK/dV
// columns) they cover GQA, ragged sizes over several tiles, key and query
// counts that differ, every mask with the cap, and queries that see no key
// (left padding under the causal mask).
var flashCases = []flashCase{
	{"one_d16", MaskedAttention{B: 1, T: 1, S: 1, Hq: 2, Hkv: 2, D: 16}, false, 0},
	{"causal_gqa_d64", MaskedAttention{B: 2, T: 65, S: 65, Hq: 4, Hkv: 2, D: 64, Causal: true}, false, 0},
	{"causal_d128", MaskedAttention{B: 1, T: 63, S: 63, Hq: 2, Hkv: 1, D: 128, Causal: true}, false, 0},
	{"offset_d32", MaskedAttention{B: 1, T: 33, S: 97, Hq: 3, Hkv: 1, D: 32, Causal: true, QueryOffset: 64}, false, 0},
	{"window_d96", MaskedAttention{B: 1, T: 130, S: 130, Hq: 2, Hkv: 1, D: 96, Causal: true, Window: 40}, false, 0},
	{"pad_causal_d64", MaskedAttention{B: 2, T: 31, S: 31, Hq: 2, Hkv: 2, D: 64, Causal: true}, true, 0},
	{"packed_d48", MaskedAttention{B: 1, T: 100, S: 100, Hq: 2, Hkv: 2, D: 48, Causal: true}, false, 23},
	{"bidirectional_pad_d80", MaskedAttention{B: 2, T: 70, S: 70, Hq: 2, Hkv: 1, D: 80}, true, 0},
	{"offset_packed_d112", MaskedAttention{B: 1, T: 20, S: 50, Hq: 2, Hkv: 2, D: 112, Causal: true, QueryOffset: 30}, false, 17},
	{"all_masks_softcap_d64", MaskedAttention{B: 2, T: 90, S: 90, Hq: 6, Hkv: 2, D: 64, Causal: true, Window: 37, Softcap: 1.5}, true, 29},
	{"softcap50_d128", MaskedAttention{B: 1, T: 40, S: 40, Hq: 2, Hkv: 2, D: 128, Causal: true, Softcap: 50}, false, 0},
	{"causal_gqa_d256", MaskedAttention{B: 1, T: 65, S: 65, Hq: 4, Hkv: 2, D: 256, Causal: true}, false, 0},
	{"bidirectional_pad_d256", MaskedAttention{B: 2, T: 33, S: 70, Hq: 2, Hkv: 2, D: 256}, true, 0},
	{"all_masks_softcap_d256", MaskedAttention{B: 2, T: 40, S: 40, Hq: 3, Hkv: 1, D: 256, Causal: true, Window: 21, Softcap: 50}, true, 13},
	{"tile_d32", MaskedAttention{B: 1, T: 64, S: 64, Hq: 2, Hkv: 1, D: 32}, false, 0},
	// No queries: dK and dV are written as zeros. No keys: O = 0, lse = -inf.
	{"no_queries_d32", MaskedAttention{B: 2, T: 0, S: 5, Hq: 2, Hkv: 1, D: 32, Causal: true}, false, 0},
	{"no_keys_d32", MaskedAttention{B: 2, T: 3, S: 0, Hq: 2, Hkv: 1, D: 32}, false, 0},
}

// flashRun holds one case's inputs on the device.
type flashRun struct {
	a           MaskedAttention
	ref         *flashRef
	q, k, v, do Ptr
	nq, nk      int
}

func newFlashRun(g *gpu, c flashCase, dt DType) *flashRun {
	a := c.a
	a.Scale = float32(1 / math.Sqrt(float64(a.D)))
	r := &flashRef{m: maskedRef{a: a}}
	nq, nk := a.B*a.T*a.Hq*a.D, a.B*a.S*a.Hkv*a.D
	// Raw float32 values for F32 storage (the kernels round them while
	// staging), bf16 values for BF16 storage.
	raw := [4][]float32{g.randn(nq, 1, dt), g.randn(nk, 1, dt), g.randn(nk, 1, dt), g.randn(nq, 1, dt)}
	r.q, r.k, r.v, r.do, r.rawDo = roundBF16(raw[0]), roundBF16(raw[1]), roundBF16(raw[2]), roundBF16(raw[3]), raw[3]
	if c.pad {
		r.m.keymask = make([]int32, a.B*a.S)
		for i := range r.m.keymask {
			r.m.keymask[i] = 1
		}
		r.m.keymask[a.S-1], r.m.keymask[a.S-2] = 0, 0
		for i := 0; i < 3 && a.B > 1; i++ {
			r.m.keymask[a.S+i] = 0
		}
		a.KeyMask = g.upI32(r.m.keymask)
	}
	if c.segLen > 0 {
		r.m.seg = make([]int32, a.B*a.S)
		for i := range r.m.seg {
			r.m.seg[i] = int32(i%a.S/c.segLen + 7*(i/a.S))
		}
		a.Segments = g.upI32(r.m.seg)
	}
	r.m.a = a
	return &flashRun{a: a, ref: r, q: g.up(raw[0], dt), k: g.up(raw[1], dt), v: g.up(raw[2], dt), do: g.up(raw[3], dt), nq: nq, nk: nk}
}

// TestFlashAttention checks forward and backward of every case, both
// storage types, against the float64 reference; outputs are NaN-poisoned.
func TestFlashAttention(t *testing.T) {
	g := needGPU(t)
	for _, c := range flashCases {
		for _, dt := range dtypes {
			t.Run(fmt.Sprintf("%s/%s", c.name, dt), func(t *testing.T) {
				f := newFlashRun(g, c, dt)
				a, r := f.a, f.ref
				r.forward()
				o, lse := g.alloc(f.nq*dt.Size()), g.alloc(a.B*a.Hq*a.T*4)
				g.ok(g.d.FlashAttentionFwd(g.s, dt, o, lse, f.q, f.k, f.v, a))
				name := func(what string) string { return fmt.Sprintf("flash_attention_%s_%s/%s", what, dt, c.name) }
				gotO := g.down(o, f.nq, dt)
				compare(t, name("fwd"), gotO, r.o, r.omag, tolFlash(dt))
				compare(t, name("lse_fwd"), g.down(lse, a.B*a.Hq*a.T, F32), r.lse, r.lsemag, tolFlashLSE)

				dq, dk, dv := g.alloc(f.nq*dt.Size()), g.alloc(f.nk*dt.Size()), g.alloc(f.nk*dt.Size())
				delta := g.alloc(a.B * a.Hq * a.T * 4)
				g.ok(g.d.FlashAttentionBwd(g.s, dt, dq, dk, dv, delta, f.do, o, lse, f.q, f.k, f.v, a))
				r.backward(gotO)
				compare(t, name("dq_bwd"), g.down(dq, f.nq, dt), r.dq, r.dqmag, tolFlash(dt))
				compare(t, name("dk_bwd"), g.down(dk, f.nk, dt), r.dk, r.dkmag, tolFlash(dt))
				compare(t, name("dv_bwd"), g.down(dv, f.nk, dt), r.dv, r.dvmag, tolFlash(dt))
			})
		}
	}
}

// TestFlashAttentionDeterministic runs the backward twice on the GQA cases
// with every mask (D = 64, and D = 256 with its split dkv blocks) and
// compares the gradients bit for bit: the kernels use no atomics, so
// nothing may differ.
func TestFlashAttentionDeterministic(t *testing.T) {
	g := needGPU(t)
	for _, name := range []string{"all_masks_softcap_d64", "all_masks_softcap_d256"} {
		t.Run(name, func(t *testing.T) { flashDeterministic(t, g, flashCaseNamed(t, name)) })
	}
}

func flashCaseNamed(t *testing.T, name string) flashCase {
	for _, c := range flashCases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no flash case %s", name)
	return flashCase{}
}

func flashDeterministic(t *testing.T, g *gpu, c flashCase) {
	f := newFlashRun(g, c, F32)
	a := f.a
	o, lse, delta := g.alloc(f.nq*4), g.alloc(a.B*a.Hq*a.T*4), g.alloc(a.B*a.Hq*a.T*4)
	g.ok(g.d.FlashAttentionFwd(g.s, F32, o, lse, f.q, f.k, f.v, a))
	var runs [2][3][]float32
	for i := range runs {
		dq, dk, dv := g.alloc(f.nq*4), g.alloc(f.nk*4), g.alloc(f.nk*4)
		g.ok(g.d.FlashAttentionBwd(g.s, F32, dq, dk, dv, delta, f.do, o, lse, f.q, f.k, f.v, a))
		runs[i] = [3][]float32{g.down(dq, f.nq, F32), g.down(dk, f.nk, F32), g.down(dv, f.nk, F32)}
	}
	for j, what := range []string{"dq", "dk", "dv"} {
		for i := range runs[0][j] {
			x, y := runs[0][j][i], runs[1][j][i]
			if math.Float32bits(x) != math.Float32bits(y) {
				t.Fatalf("%s[%d]: %g then %g: the backward is not deterministic", what, i, x, y)
			}
		}
	}
}

// TestFlashAttentionTakes needs no GPU: the shapes the flash kernels refuse
// come back as errors that say why, and the kernel of every head size they
// take is embedded.
func TestFlashAttentionTakes(t *testing.T) {
	ok := MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 64}
	heads := []int{flashWideHead}
	for d := flashHeadGranule; d <= flashMaxHead; d += flashHeadGranule {
		heads = append(heads, d)
	}
	for _, d := range heads {
		a := ok
		a.D = d
		if err := FlashAttentionTakes(a); err != nil {
			t.Errorf("D=%d: %v", d, err)
		}
	}
	for _, c := range []struct {
		a    MaskedAttention
		want string
	}{
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 72}, "head size 72"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 8}, "head size 8"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 144}, "head size 144"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 264}, "0 < D <= 256"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 272}, "0 < D <= 256"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 512}, "0 < D <= 256"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 3, Hkv: 2, D: 64}, "Hq a multiple of Hkv"},
		{MaskedAttention{B: 70000, T: 4, S: 4, Hq: 2, Hkv: 1, D: 64}, "grid limit"},
		{MaskedAttention{B: 1, T: 4, S: 4, Hq: 2, Hkv: 1, D: 64, Softcap: -1}, "cap"},
		{MaskedAttention{B: 1, T: 8, S: 4, Hq: 2, Hkv: 1, D: 64, Segments: Ptr(1)}, "segments need S >= T"},
	} {
		err := FlashAttentionTakes(c.a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.a, err, c.want)
		}
	}
	names := map[string]bool{}
	for _, n := range KernelNames() {
		names[n] = true
	}
	for _, d := range heads {
		a := ok
		a.D = d
		for _, dt := range dtypes {
			for _, pass := range []string{"fwd", "dq_bwd", "dkv_bwd"} {
				if n := a.flashKernel(pass, dt); !names[n] {
					t.Errorf("kernel %s is not embedded", n)
				}
			}
		}
	}
}
