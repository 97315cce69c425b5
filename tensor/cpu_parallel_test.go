package tensor

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParallelRangeCoversEachIndexOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 4} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 2, 3, 7, 1000, parallelMinWork - 1, parallelMinWork, 3*parallelMinWork + 5} {
			seen := make([]atomic.Int32, n)
			parts := parallelParts(n, 1)
			var bad atomic.Bool
			parallelRange(n, 1, func(part, lo, hi int) {
				if part < 0 || part >= parts || lo > hi {
					bad.Store(true)
				}
				for i := lo; i < hi; i++ {
					seen[i].Add(1)
				}
			})
			if bad.Load() {
				t.Fatalf("procs=%d n=%d: part out of [0,%d) or empty range reversed", procs, n, parts)
			}
			for i := range seen {
				if c := seen[i].Load(); c != 1 {
					t.Fatalf("procs=%d n=%d: index %d visited %d times", procs, n, i, c)
				}
			}
			if want := min(procs, max(n, 1)); n >= parallelMinWork && parts != want {
				t.Fatalf("procs=%d n=%d: %d parts, want %d", procs, n, parts, want)
			}
		}
	}
}

func randF32(r *rand.Rand, shape ...int) *Tensor {
	return FromF32(CPUDefault(), normals(r, Shape(shape).Numel()), shape...)
}

// The ops split over goroutines must give what the serial pass gives (sizes
// above parallelMinWork, uneven part counts). Per-element and per-row ops
// are bit-identical; RMSNorm's dw sums per part first, so it may differ by
// float32 rounding of the part sums (relative 1e-5 of the largest entry).
func TestParallelOpsMatchSerial(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(3, 4))
	be := CPUDefault()
	const rows, dim = 301, 256
	x, w, dy := randF32(r, rows, dim), randF32(r, dim), randF32(r, rows, dim)
	g, u := randF32(r, rows, dim), randF32(r, rows, dim)
	q := randF32(r, 2, 70, 4, 16)
	k, v := randF32(r, 2, 70, 2, 16), randF32(r, 2, 70, 2, 16)
	dout := randF32(r, 2, 70, 4, 16)
	cos, sin := randF32(r, 3, 67, 16), randF32(r, 3, 67, 16)
	xr := randF32(r, 3, 67, 8, 32) // 201 rows × 256: above parallelMinWork
	logits := randF32(r, 41, 1000)
	labels := make([]int64, 41)
	for i := range labels {
		labels[i] = int64(r.IntN(1000))
	}
	labels[3] = -100
	lab := FromHost(be, I64, labels, 41)
	run := func(procs int) [][]float32 {
		runtime.GOMAXPROCS(procs)
		var out [][]float32
		y, inv := RMSNorm(x, w, 1e-5)
		dx, dw := New(be, F32, rows, dim), Zeros(be, F32, dim)
		check(be.RMSNormBackward(dx, dw, dy, x, w, inv))
		dxNoW := New(be, F32, rows, dim)
		check(be.RMSNormBackward(dxNoW, nil, dy, x, nil, inv))
		out = append(out, y.F32(), inv.F32(), dx.F32(), dxNoW.F32(), dw.F32())
		dg, du := New(be, F32, rows, dim), New(be, F32, rows, dim)
		check(be.SwiGLUBackward(dg, du, dy, g, u))
		out = append(out, SwiGLU(g, u).F32(), dg.F32(), du.F32(), Add(g, u).F32(), Mul(g, u).F32())
		out = append(out, RoPE(xr, cos, sin, false).F32(), RoPE(xr, cos, sin, true).F32())
		loss, dl := CrossEntropy(logits, lab, -100, 0.5, true)
		out = append(out, loss.F32(), dl.F32())
		p := AttentionParams{Scale: 0.25, Causal: true}
		o, lse := Attention(q, k, v, p)
		dq, dk, dv := New(be, F32, q.shape...), New(be, F32, k.shape...), New(be, F32, v.shape...)
		check(be.AttentionBackward(dq, dk, dv, dout, o, lse, q, k, v, p))
		out = append(out, o.F32(), lse.F32(), dq.F32(), dk.F32(), dv.F32())
		return out
	}
	names := []string{"rmsnorm y", "rmsnorm inv", "rmsnorm dx", "rmsnorm dx (no w)", "rmsnorm dw", "swiglu", "swiglu dgate", "swiglu dup", "add", "mul",
		"rope", "rope inverse", "ce loss", "ce dlogits", "attention out", "attention lse", "attention dq", "attention dk", "attention dv"}
	serial := run(1)
	for _, procs := range []int{2, 3} {
		par := run(procs)
		for i, name := range names {
			tol := 0.0
			if name == "rmsnorm dw" {
				tol = 1e-5
			}
			scale := 0.0
			for _, v := range serial[i] {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
			for j := range serial[i] {
				if d := math.Abs(float64(par[i][j] - serial[i][j])); !(d <= tol*scale) {
					t.Fatalf("procs=%d %s[%d]: parallel %v, serial %v", procs, name, j, par[i][j], serial[i][j])
				}
			}
		}
	}
}

// A bad label in a later part is reported with its row in the whole batch.
func TestParallelCrossEntropyErrorRow(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	be := CPUDefault()
	logits := Zeros(be, F32, 64, 1000)
	labels := make([]int64, 64)
	labels[50] = 1000
	loss, dl := New(be, F32, 64), New(be, F32, 64, 1000)
	err := be.CrossEntropy(loss, dl, logits, FromHost(be, I64, labels, 64), -100, 1)
	if err == nil || !strings.Contains(err.Error(), "row 50") {
		t.Fatalf("got %v, want an error naming row 50", err)
	}
}
