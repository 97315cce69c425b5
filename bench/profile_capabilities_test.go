package bench

import (
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
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
	m, err := nn.Load("../assets/models/tiny-base", nn.LoadOptions{KeepBF16: true, Backend: prof})
	if err != nil {
		t.Fatal(err)
	}
	m.Checkpointing, m.OffloadCheckpoints = true, true
	cfg := lora.NewConfig(8, 16, "all-linear")
	cfg.LoraDropout = 0.1
	a, err := lora.New(m, cfg, "default", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 16
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % m.Config.VocabSize)
	}
	in := nn.Batch{InputIDs: tensor.FromHost(prof, tensor.I64, ids, B, T), Labels: tensor.FromHost(prof, tensor.I64, ids, B, T)}
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
	input := int64((m.Config.NumLayers - 1) * B * T * m.Config.HiddenSize * 4)
	fams := map[string]OpFamily{}
	for _, f := range prof.Families() {
		fams[f.Family] = f
	}
	if off := fams["offload copies"]; host != input || off.Calls != 2*(m.Config.NumLayers-1) || off.Bytes != 2*input {
		t.Errorf("offload: %d bytes in host memory at the backward (want %d); profile %+v (want %d copies, %d bytes)", host, input, off, 2*(m.Config.NumLayers-1), 2*input)
	}
	if fams["dropout"].Calls == 0 {
		t.Error("no dropout in the profile: the masks did not come from the backend's kernel")
	}
}
