package bench

import (
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
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
