package cudabackend

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseGEMMProvider(t *testing.T) {
	for in, want := range map[string]GEMMProvider{"": GEMMFtune, "ftune": GEMMFtune, " Auto ": GEMMAuto, "cublaslt": GEMMCuBLASLt} {
		if got, err := ParseGEMMProvider(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseGEMMProvider("cublas"); err == nil || !strings.Contains(err.Error(), "want auto, ftune, cublaslt") {
		t.Errorf("cublas: got %v", err)
	}
}

// fakeProviders counts what the chooser asks of the device.
type fakeProviders struct {
	supportsErr    error
	ours, lt       float64
	trialErr       error
	asked, trialed int
}

func (f *fakeProviders) supports() error { f.asked++; return f.supportsErr }
func (f *fakeProviders) trial() (float64, float64, error) {
	f.trialed++
	return f.ours, f.lt, f.trialErr
}

var nt = gemmKey{transB: true, M: 16384, N: 1536, K: 576, lda: 576, ldb: 576, ldc: 1536, align: 16}

// Auto times a shape once, caches and logs the decision once, and takes
// cuBLASLt only when it wins by more than the noise margin.
func TestChooserAutoMeasuresOncePerShape(t *testing.T) {
	var log bytes.Buffer
	c := newChooser(GEMMAuto, "", &log)
	f := &fakeProviders{ours: 1.0, lt: 0.5}
	for i := 0; i < 3; i++ {
		lt, err := c.pick(nt, f.supports, f.trial)
		if err != nil || !lt {
			t.Fatalf("call %d: got %v, %v; want cuBLASLt (0.5 ms against 1.0)", i, lt, err)
		}
	}
	if f.trialed != 1 || f.asked != 1 {
		t.Errorf("asked %d, timed %d times for one shape; want once each", f.asked, f.trialed)
	}
	if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "gemm nt bf16 M=16384 N=1536 K=576: cuBLASLt (ftune 1.000 ms, cuBLASLt 0.500 ms, 2.00x): measured") {
		t.Errorf("log %q: want one line naming the shape, the times and the choice", log.String())
	}
	// Within the margin ftune's kernel stays; a new shape is a new trial.
	other := nt
	other.M = 8192
	f2 := &fakeProviders{ours: 1.0, lt: 0.98}
	if lt, err := c.pick(other, f2.supports, f2.trial); err != nil || lt {
		t.Errorf("2%% faster: got %v, %v; want ftune (inside the %.0f%% margin)", lt, err, 100*autoMargin)
	}
	if got := c.choices(); len(got) != 2 || got[0].FtuneMs == 0 {
		t.Errorf("choices %+v", got)
	}
	// No algorithm for the shape: ftune's kernel, said once, no timing.
	k3 := nt
	k3.align = 2
	f3 := &fakeProviders{supportsErr: errors.New("no algorithm for this product")}
	if lt, err := c.pick(k3, f3.supports, f3.trial); err != nil || lt || f3.trialed != 0 {
		t.Errorf("unsupported: got %v, %v, timed %d", lt, err, f3.trialed)
	}
	if !strings.Contains(log.String(), "ftune: cuBLASLt has no algorithm: no algorithm for this product") {
		t.Errorf("log %q lacks the unsupported shape's line", log.String())
	}
	// A failing trial is an error, not a guess.
	k4 := nt
	k4.K = 4096
	f4 := &fakeProviders{trialErr: errors.New("CUDA_ERROR_LAUNCH_FAILED")}
	if _, err := c.pick(k4, f4.supports, f4.trial); err == nil || !strings.Contains(err.Error(), "timing nt bf16 M=16384 N=1536 K=4096") {
		t.Errorf("failed trial: got %v", err)
	}
}

func TestMBucket(t *testing.T) {
	for m, want := range map[int][2]int{1: {1, 0}, 3: {4, 1}, 4096: {4096, 0}, 4097: {8192, 1}, 16384: {16384, 0}} {
		b, bucketed := mBucket(m)
		if b != want[0] || bucketed != (want[1] == 1) {
			t.Errorf("mBucket(%d) = %d, %v; want %v", m, b, bucketed, want)
		}
	}
	k := nt
	k.M, k.bucketed = 8192, true
	if s := k.String(); !strings.Contains(s, "M≤8192") {
		t.Errorf("%q: want M≤8192", s)
	}
}

// Forced cuBLASLt never times, and a shape it cannot run is an error
// naming the shape and the setting: never a silent switch to ftune.
func TestChooserForced(t *testing.T) {
	c := newChooser(GEMMCuBLASLt, "", nil)
	f := &fakeProviders{}
	if lt, err := c.pick(nt, f.supports, f.trial); err != nil || !lt || f.trialed != 0 {
		t.Fatalf("forced: got %v, %v, timed %d", lt, err, f.trialed)
	}
	k := nt
	k.lda = 577
	bad := &fakeProviders{supportsErr: errors.New("no algorithm for this product")}
	_, err := c.pick(k, bad.supports, bad.trial)
	if err == nil || !strings.Contains(err.Error(), "gemm provider cublaslt: nt bf16 M=16384 N=1536 K=576") || !strings.Contains(err.Error(), "set gemm provider auto or ftune") {
		t.Errorf("forced, unsupported: got %v", err)
	}
	// Forced applies to float32 operands too (CUBLAS_COMPUTE_32F).
	k32 := nt
	k32.f32 = true
	if lt, err := c.pick(k32, f.supports, f.trial); err != nil || !lt {
		t.Errorf("forced f32: got %v, %v", lt, err)
	}
}

// ftune, auto on the float32 parity path and auto without the library
// ask nothing of cuBLASLt.
func TestChooserKeepsFtune(t *testing.T) {
	k32 := nt
	k32.f32 = true
	for _, c := range []struct {
		name string
		ch   *chooser
		k    gemmKey
	}{
		{"ftune", newChooser(GEMMFtune, "", nil), nt},
		{"auto f32", newChooser(GEMMAuto, "", nil), k32},
		{"auto without cuBLASLt", newChooser(GEMMAuto, "libcublasLt.so.13 not found", nil), nt},
	} {
		f := &fakeProviders{ours: 9, lt: 1}
		if lt, err := c.ch.pick(c.k, f.supports, f.trial); err != nil || lt || f.asked+f.trialed != 0 {
			t.Errorf("%s: got %v, %v, asked %d, timed %d", c.name, lt, err, f.asked, f.trialed)
		}
	}
}

// Path names the setting, the provider it resolved to and why.
func TestGEMMPath(t *testing.T) {
	lt := "cuBLASLt 13.1.0 (/usr/local/cuda/lib64/libcublasLt.so.13)"
	for _, c := range []struct {
		mode GEMMProvider
		bf16 bool
		lt   string
		err  string
		want []string
	}{
		{GEMMFtune, true, "", "", []string{"provider ftune: " + gemmBF16}},
		{GEMMFtune, false, "", "", []string{"provider ftune: " + gemmF32}},
		{GEMMCuBLASLt, true, lt, "", []string{"provider cublaslt (forced): " + lt, "CUBLAS_COMPUTE_32F", "NF4 forward: ftune's"}},
		{GEMMCuBLASLt, false, lt, "", []string{"float32 inputs", "no TF32"}},
		{GEMMAuto, true, lt, "", []string{"provider auto: per product shape the faster", lt, gemmBF16}},
		{GEMMAuto, true, "", "not found", []string{"provider auto: " + gemmBF16 + " for every product (cuBLASLt unavailable: not found)"}},
		{GEMMAuto, false, "", "", []string{"provider auto: " + gemmF32, "TF32"}},
	} {
		got := gemmPath(c.mode, c.bf16, c.lt, c.err)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s bf16=%v: %q lacks %q", c.mode, c.bf16, got, w)
			}
		}
	}
}
