package recipe

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/nn"
)

// fakeGPU is a made-up device for the memory plan: no GPU is needed to
// check how a run plans for a device-memory cap.
var fakeGPU = deviceFacts{gpu: true, name: "NVIDIA Fake 80GB", free: 80 << 30}

func capOptions(t *testing.T) (Options, nn.Config) {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := tinyOptions(t)
	o.Device, o.BatchSize, o.SeqLen = "cuda", 16, 2048
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	return o, cfg
}

// Under a cap the un-checkpointed plan exceeds but the checkpointed one
// fits, the run turns gradient checkpointing on and says so.
func TestDeviceCapTurnsCheckpointingOn(t *testing.T) {
	o, cfg := capOptions(t)
	full := o.planFor(cfg, fakeGPU)
	ck := o
	ck.GradCheckpointing = true
	lean := ck.planFor(cfg, fakeGPU)
	if lean.Peak >= full.Peak {
		t.Fatalf("checkpointed plan %s not below the full one %s", gib(lean.Peak), gib(full.Peak))
	}
	o.MaxDeviceMemory = int64((lean.Peak + full.Peak) / 2)
	var log bytes.Buffer
	if err := o.planMemory(cfg, fakeGPU, &log); err != nil {
		t.Fatal(err)
	}
	if !o.GradCheckpointing {
		t.Fatal("gradient checkpointing not turned on under the cap")
	}
	for _, want := range []string{"exceeds the", "under the device-memory cap; with training.gradient_checkpointing: true ≈", "training with them", "under its cap of"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// Under a cap nothing fits, the run is refused before step 1 with the
// arithmetic and the cap; without a cap the same run on the fake 80 GB
// GPU passes.
func TestDeviceCapRefusesWithTheArithmetic(t *testing.T) {
	o, cfg := capOptions(t)
	if err := o.planMemory(cfg, fakeGPU, &bytes.Buffer{}); err != nil {
		t.Fatalf("no cap, 80 GB free: %v", err)
	}
	o.MaxDeviceMemory = 1 << 20
	err := o.planMemory(cfg, fakeGPU, &bytes.Buffer{})
	for _, want := range []string{"the run needs about", "weights", "+ activations", "under the device-memory cap of 1 MiB (training.max_device_memory, --max-device-memory)", "training.ignore_memory_estimate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to say %q", err, want)
		}
	}
	if !errors.Is(err, ErrMemoryPlan) {
		t.Errorf("%v does not match ErrMemoryPlan", err)
	}
	if o.GradCheckpointing {
		t.Error("checkpointing turned on although it does not make the plan fit")
	}
	// The cap is min'ed with what the device has free.
	o.MaxDeviceMemory = 1 << 40
	if p := o.planFor(cfg, fakeGPU); p.Available != 80<<30 || p.Cap != 1<<40 {
		t.Errorf("cap above free memory: available %s, cap %s", gib(p.Available), gib(p.Cap))
	}
}

// A cap that cannot apply (the run fell back to the CPU) is said, not
// dropped silently.
func TestDeviceCapOnTheCPUIsReported(t *testing.T) {
	o, cfg := capOptions(t)
	o.BatchSize, o.SeqLen = 1, 32
	o.MaxDeviceMemory = 24 << 30
	wantPlanLogWithoutGPU(t, o, cfg, "training.max_device_memory 24.0 GiB not applied: device auto found no GPU (no NVIDIA driver)")
}

// wantPlanLogWithoutGPU plans o where device auto found no GPU and wants
// the log to say why a GPU setting was not applied.
func wantPlanLogWithoutGPU(t *testing.T, o Options, cfg nn.Config, want string) {
	t.Helper()
	var log bytes.Buffer
	if err := o.planMemory(cfg, deviceFacts{fallback: "no NVIDIA driver"}, &log); err != nil && !strings.Contains(err.Error(), "RAM") {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
}

// Under a cap that even the checkpointed plan exceeds but the plan with
// the saved block inputs in host memory fits, the run turns both on and
// says so; the plan moves every block's input (the first too: the
// embeddings are frozen), B·T·H values of the activations' dtype each, into
// Host, and keeps two of them on the device: the one the backward uses and
// the one coming back (prefetched).
func TestDeviceCapTurnsOffloadOn(t *testing.T) {
	o, cfg := capOptions(t)
	o.GradCheckpointing = true
	ck := o.planFor(cfg, fakeGPU)
	o.GradCheckpointing = false
	off := o
	off.GradCheckpointing, off.OffloadCheckpoints = true, true
	lean := off.planFor(cfg, fakeGPU)
	act := 4.0
	if o.Precision == "bf16" {
		act = 2
	}
	input := float64(o.BatchSize*o.SeqLen*cfg.HiddenSize) * act
	moved := float64(cfg.NumLayers) * input
	if lean.Host != moved || ck.Peak-lean.Peak != moved-2*input || ck.Host != 0 {
		t.Fatalf("offloaded plan: host %s (want %s), %s below the checkpointed one (want %s); checkpointed host %s", gib(lean.Host), gib(moved), gib(ck.Peak-lean.Peak), gib(moved-2*input), gib(ck.Host))
	}
	// Trained embeddings (modules_to_save): the first block's input is a
	// recorded op's output, which stays on the device.
	trained := off
	trained.ModulesToSave = []string{"embed_tokens"}
	if h := trained.planFor(cfg, fakeGPU).Host; h != moved-input {
		t.Errorf("offloaded plan with trained embeddings: host %s, want %s", gib(h), gib(moved-input))
	}
	o.MaxDeviceMemory = int64((lean.Peak + ck.Peak) / 2)
	var log bytes.Buffer
	if err := o.planMemory(cfg, fakeGPU, &log); err != nil {
		t.Fatal(err)
	}
	if !o.GradCheckpointing || !o.OffloadCheckpoints {
		t.Fatalf("checkpointing %v, offload %v under the cap", o.GradCheckpointing, o.OffloadCheckpoints)
	}
	for _, want := range []string{"with training.gradient_checkpointing: true, training.offload_checkpoints: true ≈", "checkpoints offloaded to pinned host memory " + gib(moved)} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	// Where nothing fits, neither is left on.
	o.GradCheckpointing, o.OffloadCheckpoints, o.MaxDeviceMemory = false, false, 1<<20
	if err := o.planMemory(cfg, fakeGPU, &bytes.Buffer{}); err == nil || o.GradCheckpointing || o.OffloadCheckpoints {
		t.Errorf("1 MiB cap: %v, checkpointing %v, offload %v", err, o.GradCheckpointing, o.OffloadCheckpoints)
	}
}

// training.offload_checkpoints is refused without gradient checkpointing
// and on --device cpu, and said not to apply when device auto finds no GPU.
func TestOffloadCheckpointsRefusedWhereItDoesNothing(t *testing.T) {
	o := tinyOptions(t)
	o.Device, o.OffloadCheckpoints = "cuda", true
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "training.gradient_checkpointing is off") {
		t.Errorf("without checkpointing: %v", err)
	}
	o.Device, o.GradCheckpointing = "cpu", true
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--device cpu") {
		t.Errorf("on the CPU: %v", err)
	}
	o.OffloadCheckpoints, o.MLPChunkTokens = false, -1
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "training.mlp_chunk_tokens -1") {
		t.Errorf("a negative MLP chunk: %v", err)
	}
	o.MLPChunkTokens, o.Mode = 64, PerSubject
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "per-subject adapters route whole batch rows") {
		t.Errorf("MLP chunks with per-subject adapters: %v", err)
	}
	o, cfg := capOptions(t)
	o.BatchSize, o.SeqLen, o.GradCheckpointing, o.OffloadCheckpoints = 1, 32, true, true
	wantPlanLogWithoutGPU(t, o, cfg, "training.offload_checkpoints not applied: device auto found no GPU (no NVIDIA driver)")
}

// Under a cap that even the offloaded plan exceeds, the MLP over chunks of
// DefaultMLPChunkTokens tokens is the third saver: its plan drops the two
// MLP widths a token of gate and up for two hidden widths (the chunks'
// outputs and their concatenation), and the backward's four MLP widths
// and two hidden widths a token for three hidden widths and one chunk's
// six MLP widths, and the run turns all three on when that fits, naming
// each.
func TestDeviceCapTurnsMLPChunksOn(t *testing.T) {
	o, cfg := capOptions(t)
	o.GradCheckpointing, o.OffloadCheckpoints = true, true
	off := o.planFor(cfg, fakeGPU)
	o.MLPChunkTokens = DefaultMLPChunkTokens
	tiled := o.planFor(cfg, fakeGPU)
	tokens := float64(o.BatchSize * o.SeqLen)
	act := 4.0
	if o.Precision == "bf16" {
		act = 2
	}
	H, I := float64(cfg.HiddenSize), float64(cfg.IntermediateSize)
	// Each tensor as the GPU's caching allocator rounds it.
	alloc := func(b float64) float64 { return float64(cuda.BlockBytes(int(math.Ceil(b)))) }
	tH, tI := alloc(tokens*act*H), alloc(tokens*act*I)
	want := (2*tI - 2*tH) + (4*tI + 2*tH) - 3*tH - 6*alloc(DefaultMLPChunkTokens*act*I)
	if got := off.Peak - tiled.Peak; math.Abs(got-want) > 1 {
		t.Fatalf("tiled plan %s below the offloaded one, want %s", gib(got), gib(want))
	}
	o.GradCheckpointing, o.OffloadCheckpoints, o.MLPChunkTokens = false, false, 0
	o.MaxDeviceMemory = int64((off.Peak + tiled.Peak) / 2)
	var log bytes.Buffer
	if err := o.planMemory(cfg, fakeGPU, &log); err != nil {
		t.Fatal(err)
	}
	if !o.GradCheckpointing || !o.OffloadCheckpoints || o.MLPChunkTokens != DefaultMLPChunkTokens {
		t.Fatalf("checkpointing %v, offload %v, MLP chunk %d under the cap", o.GradCheckpointing, o.OffloadCheckpoints, o.MLPChunkTokens)
	}
	if !strings.Contains(log.String(), "training.offload_checkpoints: true, training.mlp_chunk_tokens: 4096 ≈") {
		t.Errorf("log:\n%s", log.String())
	}
	// Per-subject adapters route whole rows: no MLP chunks for them, and
	// the same cap is then refused.
	o.GradCheckpointing, o.OffloadCheckpoints, o.MLPChunkTokens, o.Mode = false, false, 0, PerSubject
	if err := o.planMemory(cfg, fakeGPU, &bytes.Buffer{}); err == nil || o.MLPChunkTokens != 0 {
		t.Errorf("per-subject under the same cap: %v, MLP chunk %d", err, o.MLPChunkTokens)
	}
}

// Offloaded checkpoints pin host memory: a plan whose saved inputs exceed
// 80% of the available RAM is refused with the arithmetic (a warning under
// training.ignore_memory_estimate), and under a cap the plan does not pick
// offload when the RAM cannot hold it.
func TestOffloadNeedsTheRAMItPins(t *testing.T) {
	o, cfg := capOptions(t)
	o.GradCheckpointing, o.OffloadCheckpoints = true, true
	host := o.planFor(cfg, fakeGPU).Host
	small := fakeGPU
	small.hostFree = host // 80% of it is too little
	err := o.planMemory(cfg, small, &bytes.Buffer{})
	for _, want := range []string{"pins about " + gib(host), "available (at most 80% of it may be pinned)", "training.offload_checkpoints: false"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("RAM below what offload pins: %v, want it to say %q", err, want)
		}
	}
	o.IgnoreMemoryEstimate = true
	var log bytes.Buffer
	if err := o.planMemory(cfg, small, &log); err != nil || !strings.Contains(log.String(), "warning: recipe: training.offload_checkpoints pins") {
		t.Errorf("ignore_memory_estimate: %v\n%s", err, log.String())
	}
	big := small
	big.hostFree = 2 * host
	o.IgnoreMemoryEstimate = false
	if err := o.planMemory(cfg, big, &bytes.Buffer{}); err != nil {
		t.Errorf("RAM for twice what offload pins: %v", err)
	}
	// Under a cap that needs offload, with RAM that cannot hold it: no
	// step of the savers fits (MLP chunks come after offload), so the run
	// is refused and nothing is left on.
	off := o.planFor(cfg, small)
	o.OffloadCheckpoints = false
	ck := o.planFor(cfg, small)
	o.GradCheckpointing, o.MaxDeviceMemory = false, int64((off.Peak+ck.Peak)/2)
	if err := o.planMemory(cfg, small, &bytes.Buffer{}); err == nil || o.GradCheckpointing || o.OffloadCheckpoints || o.MLPChunkTokens != 0 {
		t.Errorf("cap needing offload, RAM too small for it: %v, checkpointing %v, offload %v, MLP chunk %d", err, o.GradCheckpointing, o.OffloadCheckpoints, o.MLPChunkTokens)
	}
}
