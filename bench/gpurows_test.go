package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// anchorJSON is the shape of bench/peft_lora_bench.py's gpubench.json
// (values from bench/results/peft-anchor-h100-2026-11-26.json's layout).
const anchorJSON = `{"device": {"name": "NVIDIA H200", "sms": 132, "mem_gib": 139.8},
 "peft_lora_bf16_sdpa": {
  "smollm2-135m_b8_t2048_ckpt0": {"step_s": 0.25, "tokens_per_s": 65400.0, "peak_mem_gib": 28.4, "params": 1, "build_s": 1, "approx_TFLOPs_4N": 1},
  "llama3.2-1b_b4_t2048_ckpt1": {"step_s": 0.33, "tokens_per_s": 24700.0, "peak_mem_gib": 17.2},
  "llama3.2-1b_b4_t2048_ckpt0": {"step_s": 0.24, "tokens_per_s": 34000.0, "peak_mem_gib": 35.9}}}`

func TestAnchorRowsAndRatioTable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gpubench.json")
	if err := os.WriteFile(p, []byte(anchorJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, failed, err := AnchorRows(p)
	if err != nil || failed != nil {
		t.Fatal(err, failed)
	}
	if len(rows) != 3 || rows[0].Shape != "llama-3.2-1b" || rows[0].Ckpt || !rows[1].Ckpt || rows[2].Shape != "smollm2-135m" || rows[2].TokensPerS != 65400 || rows[2].PeakGiB != 28.4 || rows[2].Side != "peft" {
		t.Fatalf("anchor rows %+v", rows)
	}
	ftune := `{"shape":"smollm2-135m","side":"ftune","batch":8,"seq":2048,"ckpt":false,"variant":"bf16","tokens_per_s":130800,"peak_gib":14.2,"step_s":0.125,"launches_per_step":4600,"host_waits_per_step":{"cuMemcpyDtoH":2},"host_wait_s_per_step":0.09}

{"shape":"llama-3.2-1b","side":"ftune","batch":4,"seq":2048,"ckpt":false,"variant":"bf16","tokens_per_s":17000,"peak_gib":35.9}
`
	fr, err := ReadRows(strings.NewReader(ftune), "ftune.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, fr...)
	var out, table bytes.Buffer
	if err := WriteRows(&out, rows); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRows(&out, "rows")
	if err != nil || len(back) != 5 {
		t.Fatalf("rows written do not read back: %v, %d rows", err, len(back))
	}
	if err := WriteRatioTable(&table, rows); err != nil {
		t.Fatal(err)
	}
	// smollm2: 2.00× tokens/s at 0.50× memory; llama-3.2-1b against the
	// un-checkpointed anchor (34,000 tok/s), not the checkpointed one.
	// The host table: only the row that carries the counts.
	for _, want := range []string{"| smollm2-135m | 8 × 2048 | ftune | bf16 | 130800 | 14.20 | 2.00× | 0.50× |", "| llama-3.2-1b | 4 × 2048 | ftune | bf16 | 17000 | 35.90 | 0.50× | 1.00× |",
		"| smollm2-135m | 8 × 2048 | bf16 | 4600 | 2 cuMemcpyDtoH | 0.0900 | 0.1250 | 0 |"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if n := strings.Count(table.String(), "| llama-3.2-1b | 4 × 2048 | bf16 |"); n != 0 {
		t.Errorf("a row without counts is in the host table:\n%s", table.String())
	}
}

func TestAnchorRowsReportsAFailedRun(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gpubench.json")
	if err := os.WriteFile(p, []byte(`{"peft_lora_bf16_sdpa": {"llama3-8b_b2_t2048_ckpt1": "failed", "smollm2-135m_b8_t2048_ckpt0": {"tokens_per_s": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, failed, err := AnchorRows(p)
	if err != nil || len(rows) != 1 || len(failed) != 1 || failed[0] != "llama3-8b_b2_t2048_ckpt1" {
		t.Errorf("failed anchor run: rows %v, failed %v, err %v; want the good row and the failed key", rows, failed, err)
	}
	if err := os.WriteFile(p, []byte(`{"peft_lora_bf16_sdpa": {"llama3-8b_b2_t2048": {"tokens_per_s": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AnchorRows(p); err == nil || !strings.Contains(err.Error(), "llama3-8b_b2_t2048") {
		t.Errorf("malformed key: got %v", err)
	}
}

func TestReadRowsNamesTheBadLine(t *testing.T) {
	for _, in := range []string{
		"{\"shape\":\"smollm2-135m\",\"side\":\"ftune\",\"tokens_per_s\":1}\n{\"shape\":\"x\",\"side\":\"torch\",\"tokens_per_s\":1}\n",
		"{\"shape\":\"smollm2-135m\",\"side\":\"ftune\",\"tokens_per_s\":1}\nnot json\n",
		"{\"shape\":\"smollm2-135m\",\"side\":\"ftune\",\"tokens_per_s\":1}\n{\"shape\":\"a\",\"side\":\"ftune\",\"tokens_per_s\":1,\"typo\":2}\n",
	} {
		if _, err := ReadRows(strings.NewReader(in), "f.jsonl"); err == nil || !strings.Contains(err.Error(), "f.jsonl:2") {
			t.Errorf("ReadRows(%q): got %v, want an error at f.jsonl:2", in, err)
		}
	}
}

// The profile charges each backend call to its family, with the bytes its
// operands cover, and the step's remaining time to host gaps.
func TestProfiledBackendChargesFamilies(t *testing.T) {
	syncs := 0
	p := NewProfiledBackend(tensor.CPUDefault(), func() error { syncs++; return nil })
	x := autograd.Param(tensor.FromHost(p, tensor.F32, []float32{1, 2, 3, 4, 5, 6}, 2, 3), "x")
	w := autograd.Frozen(tensor.FromHost(p, tensor.F32, []float32{1, 0, 0, 1, 1, 1, 0, 2, 0, 0, 0, 3}, 4, 3), "w")
	p.Reset()
	tp := autograd.NewTape()
	y := tp.Linear(x, w, nil)
	loss := tp.SumAll(tp.SwiGLU(y, y))
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	fam := map[string]OpFamily{}
	for _, f := range p.Families() {
		fam[f.Family] = f
	}
	// Forward GEMM: x [2,3], w [4,3], y [2,4] in float32.
	if g := fam["gemm"]; g.Calls < 2 || g.Bytes < 4*(6+12+8) {
		t.Errorf("gemm row %+v: want the forward and backward products", g)
	}
	if s := fam["swiglu"]; s.Calls != 2 || s.Bytes != 4*(8*3)+4*(8*5) {
		t.Errorf("swiglu row %+v: want forward (3 × 8 floats) and backward (5 × 8 floats)", s)
	}
	if fam["allocator"].Calls == 0 || syncs == 0 {
		t.Errorf("allocator row %+v, %d syncs: want both", fam["allocator"], syncs)
	}
	p.Charge("optimizer (host round trip)", 3*time.Millisecond, 12)
	var b bytes.Buffer
	if err := p.WriteTable(&b, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| gemm |", "| swiglu | 2 |", "| optimizer (host round trip) | 1 | 3.00 |", "| host gaps |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// Early release reaches the wrapped backend: a profiled step returns its
// activations as an unprofiled one does.
func TestProfiledBackendPassesReleaseThrough(t *testing.T) {
	inner := backendtest.NewCounting()
	p := NewProfiledBackend(inner, nil)
	x := autograd.Param(tensor.FromHost(p, tensor.F32, []float32{1, 2, 3, 4}, 2, 2), "x")
	tp := autograd.NewTape()
	tp.ReleaseActivations = true
	h := tp.Square(x)
	loss := tp.SumAll(tp.Square(h))
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if !inner.Released(h.Value) || inner.Released(loss.Value) || inner.Released(x.Value) {
		t.Errorf("released: h %v (want true), loss %v, x %v (want false)", inner.Released(h.Value), inner.Released(loss.Value), inner.Released(x.Value))
	}
	if got := x.Grad.F32(); got[1] != 4*8 {
		t.Errorf("gradient %v, want 4·x³ = [4 32 108 256]", got)
	}
}

// onlyBackend hides every optional capability of the CPU backend (it
// exposes the Backend interface alone).
type onlyBackend struct{ tensor.Backend }

// The profiled backend keeps the fused AddRMSNorm of the backend it wraps
// (charged to norms), and over a backend without it computes the same
// values with that backend's Add and RMSNorm.
func TestProfiledBackendKeepsAddRMSNorm(t *testing.T) {
	run := func(be tensor.Backend) (y, da []float32) {
		a := autograd.Param(tensor.FromHost(be, tensor.F32, []float32{1, 2, 3, -4, 5, 6}, 2, 3), "a")
		b := autograd.Param(tensor.FromHost(be, tensor.F32, []float32{0.5, -1, 2, 3, 0, -2}, 2, 3), "b")
		w := autograd.Frozen(tensor.FromHost(be, tensor.F32, []float32{1, 2, 3}, 3), "w")
		tp := autograd.NewTape()
		h, yv := tp.AddRMSNorm(a, b, w, 1e-6)
		if err := tp.Backward(tp.SumAll(tp.Mul(tp.Add(h, yv), yv))); err != nil {
			t.Fatal(err)
		}
		return yv.Value.F32(), a.Grad.F32()
	}
	wantY, wantDA := run(tensor.CPUDefault())
	p := NewProfiledBackend(tensor.CPUDefault(), nil)
	if !tensor.SupportsAddRMSNorm(p) {
		t.Fatal("the profiled CPU backend hides AddRMSNorm")
	}
	p.Reset()
	gotY, gotDA := run(p)
	calls := 0
	for _, f := range p.Families() {
		if f.Family == "norms" {
			calls = f.Calls
		}
	}
	if calls != 2 {
		t.Errorf("norms row: %d calls, want the fused forward and backward", calls)
	}
	fallback := NewProfiledBackend(onlyBackend{tensor.CPUDefault()}, nil)
	fbY, fbDA := run(fallback)
	for i := range wantY {
		if gotY[i] != wantY[i] || fbY[i] != wantY[i] {
			t.Errorf("y[%d]: direct %v, profiled %v, profiled fallback %v", i, wantY[i], gotY[i], fbY[i])
		}
	}
	for i := range wantDA {
		if gotDA[i] != wantDA[i] || fbDA[i] != wantDA[i] {
			t.Errorf("da[%d]: direct %v, profiled %v, profiled fallback %v", i, wantDA[i], gotDA[i], fbDA[i])
		}
	}
}
