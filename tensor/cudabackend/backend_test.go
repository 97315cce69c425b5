package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// open returns the backend on device 0, or skips the test with the one-line
// reason from cuda.Available when there is no usable GPU.
func open(t *testing.T, opt Options) *Backend {
	t.Helper()
	if ok, reason := Available(); !ok {
		t.Skip(reason)
	}
	b, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the shared backend suite in float32 mode at the CPU
// backend's tolerances: every op here computes in float32 (GEMM, fused
// kernels) or double (elementwise, reductions, softmax), so the float32
// limits of backendtest.F32Tol apply unchanged.
func TestConformance(t *testing.T) {
	b := open(t, Options{})
	backendtest.Run(t, b, backendtest.F32Tol)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// BF16Tol is for BF16MatMul mode: GEMM operands are rounded to bf16 (2⁻⁸
// relative each), so a product's normalised error is ~2⁻⁸·√2 ≈ 6e-3 for
// random data; 1e-2 leaves a margin without hiding a wrong term (a
// transposed or missing operand gives errors of order 1). Everything else
// is unchanged from float32 mode.
var BF16Tol = backendtest.Tol{Elementwise: 1e-6, Reduce: 1e-5, MatMul: 1e-2, Fused: 1e-5}

func TestConformanceBF16MatMul(t *testing.T) {
	// The SIMT attention kernels: the suite checks attention at Fused
	// (float32) tolerances; the flash kernels that auto picks in bf16 mode
	// are checked at bf16 tolerances by attention_flash_test.go.
	b := open(t, Options{BF16MatMul: true, AttentionKernel: AttentionSIMT})
	backendtest.Run(t, b, BF16Tol)
}

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
}

// TestAttentionTiledPath checks the tiled kernels (D a multiple of 32) and
// the masked kernels on the same inputs against the CPU backend, forward
// and backward, causal with right and left padding (left padding leaves
// queries that see no key: output and gradients 0). Tolerance 1e-5
// normalised: float32 dot products of 32-128 terms and a softmax over ≤ 70
// keys, against the CPU's float32 GEMM-based attention.
func TestAttentionTiledPath(t *testing.T) {
	gpu := open(t, Options{})
	masked := &Backend{dev: gpu.dev, alloc: gpu.alloc, opt: gpu.opt, noFastAttention: true}
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(7, 11))
	worst := map[bool]float64{}
	defer func() {
		t.Logf("attention vs CPU, worst relative error of out/dq/dk/dv: tiled %.3g, masked %.3g", worst[true], worst[false])
	}()
	for _, c := range []struct{ B, T, Hq, Hkv, D int }{{2, 37, 4, 2, 32}, {1, 70, 2, 1, 64}, {2, 17, 2, 2, 128}} {
		mask := make([]int64, c.B*c.T)
		for i := range mask {
			mask[i] = 1
		}
		for i := 0; i < 3; i++ {
			mask[c.T-1-i] = 0 // row 0 right-padded
			if c.B > 1 {
				mask[c.T+i] = 0 // row 1 left-padded
			}
		}
		// Each size with and without padding, uncapped and soft-capped
		// (Gemma 2; cap 1.5 bends most scores): the capped kernels of both
		// families against the CPU too.
		for _, pc := range []struct {
			padded bool
			cap    float32
		}{{false, 0}, {true, 0}, {false, 1.5}, {true, 1.5}} {
			padded := pc.padded
			name := fmt.Sprintf("B%d_T%d_Hq%d_Hkv%d_D%d_pad%v_cap%g", c.B, c.T, c.Hq, c.Hkv, c.D, padded, pc.cap)
			qv, kv, vv := randF32(r, c.B*c.T*c.Hq*c.D), randF32(r, c.B*c.T*c.Hkv*c.D), randF32(r, c.B*c.T*c.Hkv*c.D)
			dov := randF32(r, c.B*c.T*c.Hq*c.D)
			run := func(be tensor.Backend) [4][]float32 {
				q := tensor.FromHost(be, tensor.F32, append([]float32(nil), qv...), c.B, c.T, c.Hq, c.D)
				k := tensor.FromHost(be, tensor.F32, append([]float32(nil), kv...), c.B, c.T, c.Hkv, c.D)
				v := tensor.FromHost(be, tensor.F32, append([]float32(nil), vv...), c.B, c.T, c.Hkv, c.D)
				do := tensor.FromHost(be, tensor.F32, append([]float32(nil), dov...), c.B, c.T, c.Hq, c.D)
				p := tensor.AttentionParams{Causal: true, Scale: float32(1 / math.Sqrt(float64(c.D))), Softcap: pc.cap}
				if padded {
					p.KeyMask = tensor.FromHost(be, tensor.I64, append([]int64(nil), mask...), c.B, c.T)
				}
				out := tensor.Full(be, tensor.F32, math.NaN(), c.B, c.T, c.Hq, c.D)
				lse := tensor.Full(be, tensor.F32, math.NaN(), c.B, c.Hq, c.T)
				if err := be.Attention(out, lse, q, k, v, p); err != nil {
					t.Fatal(err)
				}
				dq, dk, dv := tensor.Full(be, tensor.F32, math.NaN(), q.Shape()...), tensor.Full(be, tensor.F32, math.NaN(), k.Shape()...), tensor.Full(be, tensor.F32, math.NaN(), v.Shape()...)
				if err := be.AttentionBackward(dq, dk, dv, do, out, lse, q, k, v, p); err != nil {
					t.Fatal(err)
				}
				return [4][]float32{out.F32(), dq.F32(), dk.F32(), dv.F32()}
			}
			want := run(cpu)
			for _, be := range []*Backend{gpu, masked} {
				got := run(be)
				for i, what := range []string{"out", "dq", "dk", "dv"} {
					e := relErr(got[i], want[i])
					worst[!be.noFastAttention] = max(worst[!be.noFastAttention], e)
					if !(e <= 1e-5) {
						t.Errorf("%s fast=%v %s: relative error %.3g > 1e-5", name, !be.noFastAttention, what, e)
					}
				}
			}
		}
	}
}

// TestCopyConvert checks strided copies and dtype conversions against the
// CPU backend bit for bit (they are exact or single roundings), and that
// I64 values beyond int32 survive a round trip.
func TestCopyConvert(t *testing.T) {
	b := open(t, Options{})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(1, 2))
	src := randF32(r, 2*3*5*7)
	for _, be := range []tensor.Backend{b} {
		x := tensor.FromHost(be, tensor.F32, append([]float32(nil), src...), 2, 3, 5, 7)
		xc := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), src...), 2, 3, 5, 7)
		views := map[string]func(*tensor.Tensor) *tensor.Tensor{
			"permute":   func(t *tensor.Tensor) *tensor.Tensor { return t.Permute(3, 1, 0, 2) },
			"narrow":    func(t *tensor.Tensor) *tensor.Tensor { return t.Narrow(2, 1, 3).Narrow(3, 2, 4) },
			"transpose": func(t *tensor.Tensor) *tensor.Tensor { return t.Transpose(0, 3) },
			"expand":    func(t *tensor.Tensor) *tensor.Tensor { return t.Narrow(1, 1, 1).Expand(tensor.Shape{4, 2, 3, 5, 7}) },
		}
		for name, view := range views {
			for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.F64, tensor.I32, tensor.I64} {
				got := view(x).To(dt).Contiguous().To(tensor.F64).F64()
				want := view(xc).To(dt).Contiguous().To(tensor.F64).F64()
				for i := range want {
					if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
						t.Fatalf("%s to %v: element %d is %g, want %g", name, dt, i, got[i], want[i])
					}
				}
			}
		}
	}
	big := []int64{1 << 40, -3, 0, math.MaxInt64}
	got := tensor.FromHost(b, tensor.I64, big, 2, 2).Transpose(0, 1).Contiguous().I64()
	want := []int64{1 << 40, 0, -3, math.MaxInt64}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("I64 transpose: %v, want %v", got, want)
		}
	}
	f := tensor.Full(b, tensor.I64, 7, 3).I64()
	if f[0] != 7 || f[2] != 7 {
		t.Fatalf("I64 fill: %v", f)
	}
}

// TestErrors: bad ids and labels give errors naming the position, and what
// the backend lacks says tensor.ErrUnsupported.
func TestErrors(t *testing.T) {
	b := open(t, Options{})
	tab := tensor.Zeros(b, tensor.F32, 5, 3)
	// Each id check twice: ids as uploaded, checked from their host copy,
	// and ids a device copy wrote, which have none and are checked by the
	// kernel: the same error either way.
	onDevice := func(src *tensor.Tensor) *tensor.Tensor {
		d := tensor.New(b, src.DType(), src.Shape()...)
		if err := b.Copy(d, src); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ids := tensor.FromHost(b, tensor.I64, []int64{1, 4, 5, 0}, 4)
	out := tensor.New(b, tensor.F32, 4, 3)
	var prev string
	for _, ids := range []*tensor.Tensor{ids, onDevice(ids)} {
		err := b.Embedding(out, tab, ids)
		if err == nil || !strings.Contains(err.Error(), "id 5 at position 2") || (prev != "" && err.Error() != prev) {
			t.Errorf("Embedding with id 5 of 5: error %v, want one naming id 5 at position 2 (as %q)", err, prev)
		}
		if err != nil {
			prev = err.Error()
		}
	}
	logits := tensor.Zeros(b, tensor.F32, 3, 4)
	lab := tensor.FromHost(b, tensor.I32, []int32{0, -100, -1}, 3)
	loss := tensor.New(b, tensor.F32, 3)
	prev = ""
	for _, lab := range []*tensor.Tensor{lab, onDevice(lab)} {
		err := b.CrossEntropy(loss, nil, logits, lab, -100, 1)
		if err == nil || !strings.Contains(err.Error(), "id -1 at position 2") || (prev != "" && err.Error() != prev) {
			t.Errorf("CrossEntropy with label -1: error %v, want one naming id -1 at position 2 (as %q)", err, prev)
		}
		if err != nil {
			prev = err.Error()
		}
	}
	if _, err := b.FromHost(tensor.F16, []uint16{1}); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("F16 upload: %v, want ErrUnsupported", err)
	}
	q := tensor.Zeros(b, tensor.F32, 1, 2, 1, 512)
	o, lse := tensor.New(b, tensor.F32, 1, 2, 1, 512), tensor.New(b, tensor.F32, 1, 1, 2)
	if err := b.Attention(o, lse, q, q, q, tensor.AttentionParams{Causal: true, Scale: 1}); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("attention D=512: %v, want ErrUnsupported", err)
	}
	a := tensor.Zeros(b, tensor.F64, 2, 2)
	if err := b.MatMul(tensor.New(b, tensor.F64, 2, 2), a, a, false, false, 1, 0); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("F64 MatMul: %v, want ErrUnsupported", err)
	}
}

// Integer tensors uploaded by FromHost keep a host copy, so reading them
// back and checking ids against a vocabulary do not wait for the GPU; any
// write through the backend drops it, and the device's values are read
// again.
func TestIntsReadFromTheirHostCopy(t *testing.T) {
	b := open(t, Options{})
	dev := b.CUDADevice()
	ids := tensor.FromHost(b, tensor.I64, []int64{3, 1, 4, 1, 5}, 5)
	lab := tensor.FromHost(b, tensor.I32, []int32{2, -100, 0}, 3)
	tab := tensor.Zeros(b, tensor.F32, 6, 2)
	before := dev.CallCounts()
	if got := ids.Narrow(0, 1, 3).I64(); fmt.Sprint(got) != "[1 4 1]" {
		t.Errorf("a view's ids: %v, want [1 4 1]", got)
	}
	if got := lab.I64(); fmt.Sprint(got) != "[2 -100 0]" {
		t.Errorf("I32 labels: %v", got)
	}
	_ = tensor.Embedding(tab, ids)
	loss := tensor.New(b, tensor.F32, 3)
	if err := b.CrossEntropy(loss, nil, tensor.Zeros(b, tensor.F32, 3, 6), lab, -100, 1); err != nil {
		t.Fatal(err)
	}
	if w := cuda.HostWaits(before, dev.CallCounts()); len(w) != 0 {
		t.Errorf("the host waited after %v", w)
	}
	// Writes: a copy into a view, and a fill.
	if err := b.Copy(ids.Narrow(0, 0, 2), tensor.FromHost(b, tensor.I64, []int64{9, 8}, 2)); err != nil {
		t.Fatal(err)
	}
	if got := ids.I64(); fmt.Sprint(got) != "[9 8 4 1 5]" {
		t.Errorf("after a copy into it: %v, want [9 8 4 1 5]", got)
	}
	if err := b.Fill(lab, 7); err != nil {
		t.Fatal(err)
	}
	if got := lab.I64(); fmt.Sprint(got) != "[7 7 7]" {
		t.Errorf("after a fill: %v, want [7 7 7]", got)
	}
	if err := b.Embedding(tensor.New(b, tensor.F32, 5, 2), tab, ids); err == nil || !strings.Contains(err.Error(), "id 9 at position 0") {
		t.Errorf("Embedding after the ids were written: error %v, want one naming id 9 at position 0", err)
	}
}

// TestMatMulBatched covers the per-batch launches (batched b, transposed a)
// that the conformance suite's shared-weight cases do not reach.
func TestMatMulBatched(t *testing.T) {
	b := open(t, Options{})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(3, 4))
	av, wv := randF32(r, 3*7*5), randF32(r, 3*7*6)
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		ash, wsh := []int{3, 5, 7}, []int{3, 7, 6}
		if tr[0] {
			ash = []int{3, 7, 5}
		}
		if tr[1] {
			wsh = []int{3, 6, 7}
		}
		run := func(be tensor.Backend) []float32 {
			a := tensor.FromHost(be, tensor.F32, append([]float32(nil), av...), ash...)
			w := tensor.FromHost(be, tensor.F32, append([]float32(nil), wv...), wsh...)
			return tensor.MatMul(a, w, tr[0], tr[1]).F32()
		}
		if e := relErr(run(b), run(cpu)); !(e <= 1e-5) {
			t.Errorf("batched matmul trans=%v: relative error %.3g > 1e-5", tr, e)
		}
	}
}

// TestNF4 checks NF4 weights: dequantization (Copy to F32, exact: one
// code·absmax product in float32 on both sides) and MatMul with an NF4
// right-hand operand, transposed as Linear layers use it, against the CPU
// backend (float32 GEMMs: 1e-5 normalised).
func TestNF4(t *testing.T) {
	b := open(t, Options{})
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(5, 6))
	const N, K, bs = 24, 40, 64 // 960 elements: 15 blocks
	d := tensor.NF4Data{Packed: make([]byte, N*K/2), Absmax: make([]float32, N*K/bs), BlockSize: bs, Len: N * K}
	for i := range d.Packed {
		d.Packed[i] = byte(r.IntN(256))
	}
	for i := range d.Absmax {
		d.Absmax[i] = float32(r.Float64() + 0.1)
	}
	wg, wc := tensor.FromNF4(b, d, N, K), tensor.FromNF4(cpu, d, N, K)
	got, want := wg.To(tensor.F32).F32(), wc.To(tensor.F32).F32()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("NF4 dequant: element %d is %g, want %g", i, got[i], want[i])
		}
	}
	av := randF32(r, 3*5*K)
	ag := tensor.FromHost(b, tensor.F32, append([]float32(nil), av...), 3, 5, K)
	ac := tensor.FromHost(cpu, tensor.F32, append([]float32(nil), av...), 3, 5, K)
	e := relErr(tensor.MatMul(ag, wg, false, true).F32(), tensor.MatMul(ac, wc, false, true).F32())
	t.Logf("NF4 matmul [3,5,%d]x[%d,%d]^T: relative error %.3g", K, N, K, e)
	if !(e <= 1e-5) {
		t.Errorf("NF4 matmul: relative error %.3g > 1e-5", e)
	}
}
