package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// StepMemory is what one LoRA training step holds, counted tensor by
// tensor on a backend that releases storage as a GPU's allocator does
// (backendtest.Counting: Tape.ReleaseActivations, as the trainer sets it;
// what Go's collector would return later is never counted as returned).
type StepMemory struct {
	Shape      string  `json:"shape"`
	Batch      int     `json:"batch"`
	Seq        int     `json:"seq"`
	Checkpoint bool    `json:"gradient_checkpointing"`
	Offload    bool    `json:"offload_checkpoints,omitempty"`
	MLPChunk   int     `json:"mlp_chunk_tokens,omitempty"`
	Weights    float64 `json:"weights_mib"`          // live before the step: the model and the adapter
	AtBackward float64 `json:"live_at_backward_mib"` // the step's tensors live when the backward begins
	Peak       float64 `json:"peak_mib"`             // the step's peak above Weights
	// BackwardPeak is the most the step held during the backward (the
	// forward's peak is its last chunk of loss logits on top of AtBackward).
	BackwardPeak float64 `json:"backward_peak_mib"`
	// HostPeak is the most the offloaded block inputs held in host memory.
	HostPeak float64 `json:"host_peak_mib,omitempty"`
	Loss     float64 `json:"loss"`
}

// MemorySavers are the trainer's settings that trade compute or host
// memory for device memory (train.Config's of the same names).
type MemorySavers struct {
	Checkpoint     bool // gradient checkpointing per decoder block
	Offload        bool // its saved block inputs in host memory
	MLPChunkTokens int  // the MLP over chunks of this many tokens (0: whole)
}

// MeasureStepMemory loads the folder on a counting backend, attaches LoRA
// r=16 alpha=32 to all seven projections (as RunLoRA) and runs one step
// (forward with the chunked loss and backward) on B×T random tokens, with
// the memory savers of mem.
func MeasureStepMemory(shape, modelDir string, B, T int, mem MemorySavers) (StepMemory, error) {
	be := backendtest.NewCounting()
	m, err := nn.Load(modelDir, nn.LoadOptions{KeepBF16: true, Backend: be})
	if err != nil {
		return StepMemory{}, err
	}
	m.Checkpointing, m.OffloadCheckpoints, m.MLPChunkTokens = mem.Checkpoint, mem.Offload, mem.MLPChunkTokens
	ad, err := lora.New(m, lora.NewConfig(16, 32, "all-linear"), "default", 1)
	if err != nil {
		return StepMemory{}, err
	}
	if err := ad.Attach(m); err != nil {
		return StepMemory{}, err
	}
	rng := rand.New(rand.NewPCG(0, 1))
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64(rng.IntN(m.Config.VocabSize))
	}
	batch := nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T), Labels: tensor.FromHost(be, tensor.I64, ids, B, T)}
	const mib = 1 << 20
	be.ResetPeak()
	start := be.Live()
	tp := autograd.NewTape()
	tp.ReleaseActivations = true
	out, err := m.Forward(tp, batch, nn.ForwardOptions{LossOnly: true})
	if err != nil {
		return StepMemory{}, err
	}
	atBackward := be.Live() - start
	fwdPeak := be.Peak()
	be.ResetPeak()
	if err := tp.Backward(out.Loss); err != nil {
		return StepMemory{}, fmt.Errorf("bench: backward: %w", err)
	}
	return StepMemory{
		Shape: shape, Batch: B, Seq: T, Checkpoint: mem.Checkpoint, Offload: mem.Offload, MLPChunk: mem.MLPChunkTokens,
		HostPeak:     round4(float64(be.HostPeak()) / mib),
		Weights:      round4(float64(start) / mib),
		AtBackward:   round4(float64(atBackward) / mib),
		Peak:         round4(float64(max(fwdPeak, be.Peak())-start) / mib),
		BackwardPeak: round4(float64(be.Peak()-start) / mib),
		Loss:         round4(out.Loss.Value.Item()),
	}, nil
}
