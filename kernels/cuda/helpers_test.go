package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// gpu is a test's handle on device 0: a stream, buffers freed at cleanup,
// and an RNG seeded freshly each run (the seed is logged to reproduce).
type gpu struct {
	t    testing.TB
	d    *Device
	s    Stream
	rng  *rand.Rand
	bufs []Ptr
}

// needGPU skips the test, with the one-line reason from Available, when no
// usable GPU is present.
func needGPU(t testing.TB) *gpu {
	t.Helper()
	if ok, reason := Available(); !ok {
		t.Skip(reason)
	}
	d, err := Open(0)
	if err != nil {
		t.Skip(err.Error())
	}
	s, err := d.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	g := &gpu{t: t, d: d, s: s, rng: rand.New(rand.NewPCG(seed, 1))}
	t.Cleanup(func() {
		for _, p := range g.bufs {
			if err := d.alloc.Free(p); err != nil {
				t.Error(err)
			}
		}
		if err := d.DestroyStream(s); err != nil {
			t.Error(err)
		}
	})
	return g
}

func (g *gpu) ok(err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
}

func (g *gpu) sync() { g.t.Helper(); g.ok(g.d.SyncStream(g.s)) }

// alloc returns a buffer of n bytes poisoned with 0xFF bytes: NaN as float32
// and as bfloat16, so an element the kernel forgets to write shows up.
func (g *gpu) alloc(n int) Ptr {
	g.t.Helper()
	p, err := g.d.alloc.Alloc(max(n, 1))
	g.ok(err)
	g.bufs = append(g.bufs, p)
	g.ok(g.d.Memset8(p, 0xFF, max(n, 1)))
	return p
}

func (g *gpu) up(vals []float32, t DType) Ptr {
	g.t.Helper()
	p := g.alloc(len(vals) * t.Size())
	if t == BF16 {
		g.ok(CopyHtoD(g.d, p, toBF16s(vals)))
	} else {
		g.ok(CopyHtoD(g.d, p, vals))
	}
	return p
}

func (g *gpu) upI32(vals []int32) Ptr {
	p := g.alloc(len(vals) * 4)
	g.ok(CopyHtoD(g.d, p, vals))
	return p
}

func (g *gpu) down(p Ptr, n int, t DType) []float32 {
	g.t.Helper()
	g.sync()
	if t == BF16 {
		h := make([]uint16, n)
		g.ok(CopyDtoH(g.d, h, p))
		return fromBF16s(h)
	}
	out := make([]float32, n)
	g.ok(CopyDtoH(g.d, out, p))
	return out
}

// randn returns n normal values with standard deviation sd; for BF16 they
// are rounded to bfloat16 first, so the reference sees exactly the kernel's
// inputs.
func (g *gpu) randn(n int, sd float64, t DType) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(g.rng.NormFloat64() * sd)
	}
	if t == BF16 {
		v = fromBF16s(toBF16s(v))
	}
	return v
}

func toBF16s(v []float32) []uint16 {
	out := make([]uint16, len(v))
	for i, f := range v {
		out[i] = half.F32ToBF16(f)
	}
	return out
}

func fromBF16s(h []uint16) []float32 {
	out := make([]float32, len(h))
	for i, x := range h {
		out[i] = half.BF16ToF32(x)
	}
	return out
}

// tol is a per-op tolerance: element i passes when
// |got - want| <= atol + rtol * |scale_i|, where scale_i is |want_i| unless the
// check supplies a magnitude (for sums: sum of |terms|).
type tol struct{ atol, rtol float64 }

// Tolerances, with the reason:
//   - f32 kernels: float32 arithmetic against a float64 reference; 1e-5
//     relative leaves room for reassociated sums and expf/rsqrtf's few ulp.
//   - bf16 outputs: one rounding to bfloat16 is at most 2^-8 relative
//     (0.39%, bf16's unit roundoff; the device runs reach it), plus inputs
//     rounded in between for fused ops; 1e-2 relative.
var (
	tolF32  = tol{1e-6, 1e-5}
	tolBF16 = tol{1e-3, 1e-2}
)

func tolFor(t DType) tol {
	if t == BF16 {
		return tolBF16
	}
	return tolF32
}

// compare checks got against want (float64 reference) and records the
// result. mag may be nil (then |want| scales the relative term).
func compare(t testing.TB, name string, got []float32, want, mag []float64, tl tol) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	var maxAbs, maxRel, worst float64
	bad, nans := 0, 0
	for i, w := range want {
		gv := float64(got[i])
		if math.IsNaN(gv) || math.IsInf(gv, 0) && !math.IsInf(w, 0) {
			nans++
			continue
		}
		if math.IsInf(w, 0) && gv == w {
			continue
		}
		m := math.Abs(w)
		if mag != nil {
			m = mag[i]
		}
		e := math.Abs(gv - w)
		maxAbs = max(maxAbs, e)
		if m > 0 {
			maxRel = max(maxRel, e/m)
		}
		r := 0.0 // err/allowed; exact matches pass even with a zero tolerance
		if e > 0 {
			r = e / (tl.atol + tl.rtol*m)
		}
		worst = max(worst, r)
		if r > 1 {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g (err %.3g, allowed %.3g)", name, i, gv, w, e, tl.atol+tl.rtol*m)
			}
			bad++
		}
	}
	if nans > 0 {
		t.Errorf("%s: %d of %d values NaN/Inf (unwritten or overflow)", name, nans, len(got))
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values outside tolerance", name, bad, len(got))
	}
	record(name, len(got), maxAbs, maxRel, worst, tl, nans == 0 && bad == 0)
}

var reportMu sync.Mutex

// record appends a conformance row to $FTUNE_CUDA_REPORT (TSV), which
// scripts/gpu-check.sh turns into the table of its report.
func record(name string, n int, maxAbs, maxRel, worst float64, tl tol, pass bool) {
	path := os.Getenv("FTUNE_CUDA_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	status := "PASS"
	if !pass {
		status = "FAIL"
	}
	fmt.Fprintf(f, "%s\t%d\t%.3g\t%.3g\t%.3g\tatol %.3g, rtol %.3g\t%s\n", name, n, maxAbs, maxRel, worst, tl.atol, tl.rtol, status)
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

var dtypes = []DType{F32, BF16}
