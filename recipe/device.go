package recipe

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
)

// Device is an opened compute device and the precision of its matrix
// products.
type Device struct {
	Backend tensor.Backend
	// BF16 is true when matrix products round their operands to bf16 and
	// sum in float32: on a GPU's tensor cores (with bf16 activations), or
	// on the CPU's bf16 dot-product instructions (tensor.CPUBF16, float32
	// activations). float32 otherwise.
	BF16 bool
	// Fallback says why device auto runs on the CPU ("" when it got a GPU
	// or was not auto): the caller prints it, never drops it.
	Fallback string
	// GEMMProvider is the GPU's matrix-product provider setting (auto,
	// ftune or cublaslt; "" on the CPU).
	GEMMProvider string
	// CPUBF16Speedup is how many times faster the CPU's bf16 products ran
	// than float32's when the device opened (tensor.CPUBF16Speedup; 0 when
	// not precision bf16 on the CPU): the instruction set alone does not
	// say whether bf16 pays on this CPU, so the run prints it.
	CPUBF16Speedup float64
}

// ModelDType is the compute dtype a model is loaded in on this device
// (nn.LoadOptions.DType): bf16 on a GPU's bf16 path (weights and
// activations; LoRA masters and the loss stay float32: nn.Model.MasterDType),
// float32 otherwise, the CPU's bf16 products included (their outputs are
// float32).
func (d Device) ModelDType() tensor.DType { return modelDType(d.Backend, d.Precision()) }

func modelDType(be tensor.Backend, precision string) tensor.DType {
	if _, gpu := be.(*cudabackend.Backend); gpu && precision == "bf16" {
		return tensor.BF16
	}
	return tensor.F32
}

// Precision names the resolved precision: "bf16" or "f32".
func (d Device) Precision() string {
	if d.BF16 {
		return "bf16"
	}
	return "f32"
}

// Describe is the line a run prints: the device and the precision in use,
// and why auto fell back to the CPU.
func (d Device) Describe() string {
	s := fmt.Sprintf("device: %s, precision %s", d.Backend.Device(), d.Precision())
	if d.GEMMProvider != "" {
		s += ", GEMM provider " + d.GEMMProvider
	}
	if r := d.CPUBF16Speedup; r > 0 {
		s += fmt.Sprintf(", bf16 products %.2f× float32's speed on this CPU (measured at open)", r)
		if r < 1.1 {
			s += "; no faster than float32 here, so precision f32 would train as fast at float32's accuracy"
		}
	}
	if d.Fallback != "" {
		s += " (device auto: " + d.Fallback + "; using the CPU)"
	}
	return s
}

// OpenDevice resolves a device name and a precision. device is "cpu";
// "cuda" or "cuda:N" (an error when no GPU is usable); "auto" or "" (a GPU
// when the driver and a device are there, else the CPU, with the reason
// in Fallback). precision is "auto" or "" (bf16 tensor cores on a GPU,
// float32 on the CPU), "bf16" (on the CPU: tensor.CPUBF16, refused on a
// CPU without AVX512_BF16 or arm64's BF16, where it would be slower than
// float32) or "f32".
func OpenDevice(device, precision string) (Device, error) {
	return OpenDeviceCapped(device, precision, 0)
}

// OpenDeviceCapped is OpenDevice with a cap on the device memory a GPU's
// allocator reserves (training.max_device_memory, bytes; 0: none). Past it
// an allocation fails with an out-of-memory error naming the cap and the
// tensor's shape. The CPU takes no cap (the caller says so).
func OpenDeviceCapped(device, precision string, maxDeviceMemory int64) (Device, error) {
	return OpenDeviceFor(DeviceRequest{Device: device, Precision: precision, MaxDeviceMemory: maxDeviceMemory})
}

// DeviceRequest is everything a run asks of its device.
type DeviceRequest struct {
	Device, Precision string // as OpenDevice takes them
	MaxDeviceMemory   int64  // as OpenDeviceCapped takes it
	// GEMMProvider is auto ("" too: per product shape the faster of
	// ftune's kernels and cuBLASLt), ftune or cublaslt (a GPU with the
	// library, else an error saying why). The CPU refuses cublaslt.
	GEMMProvider string
	// AttentionKernel is auto ("" too), flash or simt
	// (cudabackend.AttentionKernel); the CPU refuses flash.
	AttentionKernel string
	// UnfusedLoRA runs a LoRA layer's two products apart on a GPU
	// (cudabackend.Options.UnfusedLoRA): benchmarks' before/after.
	UnfusedLoRA bool
	// WGMMA puts ftune's nt and nn products (the fused LoRA ones too) on
	// the sm_90a wgmma kernels on a compute capability 9.0 GPU
	// (cudabackend.Options.WGMMA): opt-in until a GPU run has validated it.
	WGMMA bool
	// WGMMALoads picks the sm_90a kernels' loads under WGMMA
	// (cudabackend.Options.WGMMALoads; "" is cp.async).
	WGMMALoads string
	// Log receives the GPU's GEMM provider lines (nil: discarded).
	Log io.Writer
}

// requestDevice opens the device the run's options ask for, the GEMM
// provider's lines going to log.
func (o *Options) requestDevice(log io.Writer) (Device, error) {
	return OpenDeviceFor(DeviceRequest{Device: o.Device, Precision: o.Precision, MaxDeviceMemory: o.MaxDeviceMemory,
		GEMMProvider: o.GEMMProvider, AttentionKernel: o.AttentionKernel, Log: log})
}

// OpenDeviceFor opens the device r asks for (OpenDeviceCapped's rules, and
// the GEMM provider).
func OpenDeviceFor(r DeviceRequest) (Device, error) {
	device, precision, maxDeviceMemory := r.Device, r.Precision, r.MaxDeviceMemory
	p, err := parsePrecision(precision)
	if err != nil {
		return Device{}, fmt.Errorf("recipe: precision %w", err)
	}
	d, n, err := parseDevice(device)
	if err != nil {
		return Device{}, fmt.Errorf("recipe: device %w", err)
	}
	if maxDeviceMemory < 0 {
		return Device{}, fmt.Errorf("recipe: device-memory cap of %d bytes (want ≥ 0; 0: none)", maxDeviceMemory)
	}
	gp := strings.TrimSpace(r.GEMMProvider)
	if gp == "" {
		gp = string(cudabackend.GEMMAuto)
	}
	provider, err := cudabackend.ParseGEMMProvider(gp)
	if err != nil {
		return Device{}, fmt.Errorf("recipe: %w", err)
	}
	attn, err := cudabackend.ParseAttentionKernel(r.AttentionKernel)
	if err != nil {
		return Device{}, fmt.Errorf("recipe: %w", err)
	}
	open := func(n int) (tensor.Backend, error) {
		return cudabackend.Open(cudabackend.Options{Device: n, BF16MatMul: p != "f32", MaxDeviceMemory: maxDeviceMemory,
			GEMMProvider: provider, AttentionKernel: attn, UnfusedLoRA: r.UnfusedLoRA, WGMMA: r.WGMMA, WGMMALoads: cuda.WGMMALoads(r.WGMMALoads), Log: r.Log})
	}
	var out Device
	switch d {
	case "cpu":
		out.Backend = tensor.CPUDefault()
	case "auto":
		if ok, reason := cudabackend.Available(); !ok {
			out.Fallback = reason
		} else if b, err := open(0); err != nil {
			out.Fallback = "the CUDA driver is present but the GPU did not open: " + err.Error()
		} else {
			out.Backend = b
		}
		if out.Backend == nil {
			out.Backend = tensor.CPUDefault()
		}
	case "cuda":
		b, err := open(n)
		if err != nil {
			return Device{}, fmt.Errorf("recipe: device %s: %w", device, err)
		}
		out.Backend = b
	}
	_, onGPU := out.Backend.(*cudabackend.Backend)
	if p == "bf16" && !onGPU {
		// Only where asked: auto keeps the CPU on float32, the parity path
		// (the CPU's bf16 gain is below 2×, a GPU's tensor cores' 10×).
		if !tensor.CPUBF16Fast() {
			why := cpuBF16Missing() + ", so its bf16 products would be slower than float32"
			if out.Fallback != "" {
				why = "device auto found no GPU (" + out.Fallback + ") and " + why
			}
			return Device{}, fmt.Errorf("recipe: precision bf16 on the CPU: %s (set precision auto or f32)", why)
		}
		out.Backend = tensor.CPUBF16()
		out.CPUBF16Speedup = tensor.CPUBF16Speedup()
	}
	if provider == cudabackend.GEMMCuBLASLt && !onGPU {
		why := "the CPU has its own kernels"
		if out.Fallback != "" {
			why = "device auto found no GPU (" + out.Fallback + ")"
		}
		return Device{}, fmt.Errorf("recipe: gemm provider cublaslt needs a CUDA device: %s (set gemm provider auto or ftune)", why)
	}
	if attn == cudabackend.AttentionFlash && !onGPU {
		why := "the CPU has its own attention"
		if out.Fallback != "" {
			why = "device auto found no GPU (" + out.Fallback + ")"
		}
		return Device{}, fmt.Errorf("recipe: attention kernel flash needs a CUDA device: %s (set attention kernel auto or simt)", why)
	}
	out.BF16 = p == "bf16" || onGPU && p != "f32"
	if onGPU {
		out.GEMMProvider = string(provider)
	}
	return out, nil
}

// CheckDevice checks a device name as OpenDevice takes it, opening
// nothing: a command refuses a misspelt name before its work (a model's
// load) starts. The error reads after "device " or a flag's name:
// `"gpu" is not auto, cpu, cuda or cuda:N`.
func CheckDevice(device string) error {
	_, _, err := parseDevice(device)
	return err
}

// CheckPrecision is CheckDevice for a precision.
func CheckPrecision(precision string) error {
	_, err := parsePrecision(precision)
	return err
}

// parseDevice is a device name's kind ("cpu", "auto" or "cuda", as
// OpenDeviceFor switches on it) and, for cuda, the GPU's ordinal.
func parseDevice(device string) (kind string, n int, err error) {
	d := strings.ToLower(strings.TrimSpace(device))
	switch {
	case d == "cpu", d == "cuda":
		return d, 0, nil
	case d == "" || d == "auto":
		return "auto", 0, nil
	case strings.HasPrefix(d, "cuda:"):
		if n, err = strconv.Atoi(d[len("cuda:"):]); err != nil || n < 0 {
			return "", 0, fmt.Errorf("%q is not cuda:N with N ≥ 0", device)
		}
		return "cuda", n, nil
	}
	return "", 0, fmt.Errorf("%q is not auto, cpu, cuda or cuda:N", device)
}

// parsePrecision is a precision name, lower case ("" for auto).
func parsePrecision(precision string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(precision))
	if p != "" && p != "auto" && p != "bf16" && p != "f32" {
		return "", fmt.Errorf("%q is not auto, bf16 or f32", precision)
	}
	return p, nil
}

// cpuBF16Missing says what the CPU lacks for precision bf16: the
// instructions this build's bf16 kernel runs on, or the kernel itself.
func cpuBF16Missing() string {
	if isa := tensor.CPUBF16Instructions(); isa != "" {
		return "this CPU has no " + isa
	}
	return "this build has no bf16 kernel for this CPU (purego, or an architecture other than amd64 and arm64)"
}

// openDevice opens the run's device, resolves Precision "auto" into the
// precision in use (recorded in options.json), and prints both, with any
// fallback.
func (o *Options) openDevice(log io.Writer) (tensor.Backend, error) {
	if o.device != nil { // opened and printed by preflight
		return o.device.Backend, nil
	}
	d, err := o.requestDevice(log)
	if err != nil {
		return nil, err
	}
	o.Precision = d.Precision()
	fmt.Fprintln(log, d.Describe())
	return d.Backend, nil
}

// peakFLOPS is the dense peak of the device a backend runs on, for model
// FLOP utilisation: datasheet figures of the GPUs ftune targets (bf16 tensor
// cores when bf16, else float32 CUDA cores); 0 (unknown: no MFU reported)
// for the CPU and other GPUs.
func peakFLOPS(be tensor.Backend, precision string) float64 {
	bf16 := precision == "bf16"
	cb, ok := be.(*cudabackend.Backend)
	if !ok {
		return 0
	}
	name := cb.CUDADevice().Name
	table := []struct {
		match      string
		bf16, fp32 float64
	}{
		{"H200", 989e12, 67e12},
		{"H100", 989e12, 67e12}, // SXM; PCIe boards are lower, so MFU reads high there
		{"A100", 312e12, 19.5e12},
		{"L40S", 362e12, 91.6e12},
		{"A10G", 70e12, 31.2e12},
	}
	for _, row := range table {
		if strings.Contains(name, row.match) {
			if bf16 {
				return row.bf16
			}
			return row.fp32
		}
	}
	return 0
}

// paramCount is the number of model parameters (a tied embedding once).
func paramCount(ps map[string]*autograd.Var) int {
	n := 0
	for _, v := range ps {
		n += v.Value.Numel()
	}
	return n
}

// GPUPath is the code path of a GPU device (ok false on the CPU).
func (d Device) GPUPath() (p cudabackend.Path, ok bool) {
	cb, ok := d.Backend.(*cudabackend.Backend)
	if !ok {
		return cudabackend.Path{}, false
	}
	return cb.Path(), true
}

// gpuEnv is env.json's record of the GPU and of the code path the run
// trains on; on the CPU it records nothing (env.json's cpu block says it).
// optimizer names the optimizer ("adamw", "sgd") and world the number of
// workers: with the backend they decide where the optimizer step runs.
func gpuEnv(d *Device, optimizer string, world int) track.Option {
	if d == nil {
		return track.WithGPU(nil, nil)
	}
	p, ok := d.GPUPath()
	if !ok {
		return track.WithGPU(nil, nil)
	}
	describe := func() (string, error) {
		s := p.Device + ", compute " + p.Capability
		if v, err := cuda.DriverVersion(); err == nil {
			s += fmt.Sprintf(", CUDA driver %d.%d", v/1000, v%1000/10)
		}
		return s, nil
	}
	return track.WithGPU(describe, &track.GPUPathEnv{Device: p.Device, Capability: p.Capability, Precision: p.Precision,
		GEMM: p.GEMM, LoRA: p.LoRA, Attention: p.Attention, Graphs: p.Graphs, MaxDeviceMemory: p.MaxDeviceMemory, Optimizer: optimizerPath(d.Backend, optimizer, world)})
}

// DescribeGPU opens the first GPU as a default run would (precision auto)
// and names its code path, for ftune env; the error says why there is none.
func DescribeGPU() (string, error) {
	d, err := OpenDevice("cuda", "auto")
	if err != nil {
		return "", err
	}
	p, _ := d.GPUPath()
	return p.String(), nil
}

// deviceMemoryMetrics adds the allocator's peak and reserved device memory
// to every step's metrics (train/peak_device_gib, train/reserved_device_gib),
// so the run folder logs them beside tokens/s and MFU. It runs before the
// metrics logger, which emits the map.
type deviceMemoryMetrics struct {
	train.Base
	cb *cudabackend.Backend
}

func (d deviceMemoryMetrics) OnStepEnd(_ *train.Trainer, m train.Metrics) error {
	st := d.cb.Stats()
	m["train/peak_device_gib"] = float64(st.Peak) / (1 << 30)
	m["train/reserved_device_gib"] = float64(st.Reserved) / (1 << 30)
	return nil
}

// deviceMetrics are the callbacks that log device memory: one on a GPU,
// none on the CPU.
func deviceMetrics(be tensor.Backend) []train.Callback {
	cb, ok := be.(*cudabackend.Backend)
	if !ok {
		return nil
	}
	return []train.Callback{deviceMemoryMetrics{cb: cb}}
}

// optimizerPath is where a run's optimizer step will run (an empty name is
// the default, AdamW).
func optimizerPath(be tensor.Backend, optimizer string, world int) string {
	if optimizer == "" {
		optimizer = "adamw"
	}
	path, _ := train.OptimizerPathFor(be, strings.ToLower(optimizer), world)
	return path
}

// optimizerPathLog prints, when training starts on a GPU, where the
// optimizer step runs (the trainer's choice, from its parameters).
type optimizerPathLog struct {
	train.Base
	w io.Writer
}

func (l optimizerPathLog) OnTrainStart(t *train.Trainer) error {
	fmt.Fprintf(l.w, "optimizer step: %s\n", t.OptimizerPath())
	return nil
}

// optimizerLog is the callback that prints the optimizer path: one on a
// GPU, none on the CPU (whose path never changes).
func optimizerLog(be tensor.Backend, w io.Writer) []train.Callback {
	if _, ok := be.(*cudabackend.Backend); !ok {
		return nil
	}
	return []train.Callback{optimizerPathLog{w: w}}
}

// worldSize is the number of data-parallel workers of a run.
func worldSize(o Options) int {
	size, _ := o.world()
	return size
}
