package bench

import (
	"fmt"

	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// The profiler passes its backend's optional capabilities through, so a
// profiled step takes the unprofiled step's path: on a backend that offers
// host memory (the counting one), a checkpointed step with offload moves
// the block inputs through the profiler, which charges both copies of each
// to "offload copies"; LoRA dropout is drawn by the backend's kernel
// (charged to "dropout"), not on the host.
func TestProfilerPassesCapabilitiesThrough(t *testing.T) {
	be := backendtest.NewCounting()
	prof := NewProfiledBackend(be, nil)
	const B, T = 2, 16
	m, _, in := tinyLoRAStep(t, prof, 0.1, B, T)
	m.Checkpointing, m.OffloadCheckpoints = true, true
	tp := autograd.NewTape()
	tp.ReleaseActivations = true
	out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	host := be.Host()
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	input := int64(m.Config.NumLayers * B * T * m.Config.HiddenSize * 4)
	fams := map[string]OpFamily{}
	for _, f := range prof.Families() {
		fams[f.Family] = f
	}
	// Each offloaded input: its offload, its restore and, but for the
	// first block's (the last restored), its prefetch by the restore
	// before it; each input's bytes both ways once.
	offloaded := m.Config.NumLayers
	if off := fams["offload copies"]; host != input || off.Calls != 3*offloaded-1 || off.Bytes != 2*input {
		t.Errorf("offload: %d bytes in host memory at the backward (want %d); profile %+v (want %d calls, %d bytes)", host, input, off, 3*offloaded-1, 2*input)
	}
	if fams["dropout"].Calls == 0 {
		t.Error("no dropout in the profile: the masks did not come from the backend's kernel")
	}
}

// lowRankCPU is the CPU backend with a fused LoRA product that runs the
// two products itself, or declines every call.
type lowRankCPU struct {
	*tensor.CPUBackend
	decline bool
	calls   int
}

func (b *lowRankCPU) MatMulLowRank(dst, a, w, h, l *tensor.Tensor, transB bool, scale, beta float64, _ *tensor.DropoutStream) error {
	b.calls++
	if b.decline {
		return fmt.Errorf("test: %w: declined", tensor.ErrUnsupported)
	}
	if err := b.MatMul(dst, a, w, false, transB, 1, beta); err != nil {
		return err
	}
	return b.MatMul(dst, h, l, false, transB, scale, 1)
}

// The fused LoRA product passes through the profiler, charged to gemm as
// one call; one the backend declines is charged nothing, and the two
// products MatMulLowRankInto then runs are two gemm calls.
func TestProfilerPassesLowRankThrough(t *testing.T) {
	for _, decline := range []bool{false, true} {
		inner := &lowRankCPU{CPUBackend: tensor.CPUDefault(), decline: decline}
		prof := NewProfiledBackend(inner, nil)
		x := tensor.FromHost(prof, tensor.F32, []float32{1, 2, 3, 4}, 2, 2)
		w := tensor.FromHost(prof, tensor.F32, []float32{1, 0, 0, 1}, 2, 2)
		h := tensor.FromHost(prof, tensor.F32, []float32{1, 1}, 2, 1)
		l := tensor.FromHost(prof, tensor.F32, []float32{2, 3}, 2, 1)
		y := tensor.New(prof, tensor.F32, 2, 2)
		tensor.MatMulLowRankInto(y, x, w, h, l, true, 0.5, 0, nil)
		if got, want := y.F32(), []float32{2, 3.5, 4, 5.5}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("decline %v: y = %v, want %v", decline, got, want)
		}
		var gemm OpFamily
		for _, f := range prof.Families() {
			if f.Family == "gemm" {
				gemm = f
			}
		}
		want := 1
		if decline {
			want = 2
		}
		if inner.calls != 1 || gemm.Calls != want {
			t.Errorf("decline %v: the backend's fused product called %d times (want 1), gemm charged %d calls (want %d)", decline, inner.calls, gemm.Calls, want)
		}
	}
}
