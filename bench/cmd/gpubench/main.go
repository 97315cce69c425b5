// Command gpubench measures ftune's LoRA training step on a GPU for issue
// 10's benchmark table and writes its rows (scripts/gpu-bench.sh runs it).
//
//	gpubench step -shape smollm2-135m [-batch 8 -seq 2048 -nf4 -ckpt -f32 -gemm-provider auto -profile out.md]
//	    opens the GPU as ftune train does (recipe.OpenDeviceFor, the same
//	    precision and GEMM provider settings), loads a random-weight model of
//	    the shape, attaches LoRA (r=16, alpha=32 unless -rank; all seven
//	    projections) and times steps of the trainer ftune train runs
//	    (train.Trainer: forward with the chunked loss, backward releasing
//	    activations by the tape, AdamW, the gradient norm and clipping on the
//	    device, the loss read with the norm): warm-up steps, then timed steps.
//	    It prints one GPURow as a JSON line, with the GEMM provider, the
//	    optimizer path, and per timed step the kernels queued, the host's
//	    waits for the GPU (driver call counts), the seconds it spent in
//	    them and the collections the backend forced. With -profile it times one more step with a device
//	    synchronization after every call (bench.ProfiledBackend, which the
//	    model is always loaded on) and writes the per-op-family table there.
//	gpubench rows -anchor gpubench.json -ftune ftune.jsonl -o rows.jsonl
//	    merges the anchor's runs (bench/peft_lora_bench.py's gpubench.json)
//	    with ftune's rows into bench/results/gpu-lora-<gpu>-<date>.jsonl and
//	    prints the ratio table.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor/cudabackend"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

const usage = "usage: gpubench step|rows [flags] (gpubench step -h, gpubench rows -h)"

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "step":
		return stepCmd(args[1:], stdout)
	case "rows":
		return rowsCmd(args[1:], stdout)
	}
	return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
}

// stepFlags are one measurement's settings.
type stepFlags struct {
	shape              string
	batch, seq, rank   int
	nf4, ckpt, f32     bool
	offload            bool   // -ckpt's saved block inputs in pinned host memory
	mlpChunk           int    // the MLP over chunks of this many tokens (0: whole)
	cpu                bool   // dry runs here: the whole step on the CPU backend
	gemmProvider       string // auto, ftune or cublaslt, as ftune train's --gemm-provider
	attentionKernel    string // auto, flash or simt, as ftune train's --attention-kernel
	unfusedLoRA        bool   // a LoRA layer's two products apart (the before of the fused GEMM)
	wgmma              bool   // the nt and nn products on the sm_90a wgmma kernels
	wgmmaLoads         string // their loads: cp.async, tma, tma-ws
	loraDropout        float64
	warmup, steps      int
	cache, profile     string
	cpuProfile         string // the host's CPU profile of the whole command (pprof)
	hostOnly           bool   // on ptxsim, queue the device's work without running it
	maxDeviceMemoryGiB float64
}

func parseStep(args []string) (stepFlags, error) {
	var f stepFlags
	fs := flag.NewFlagSet("gpubench step", flag.ContinueOnError)
	fs.StringVar(&f.shape, "shape", "smollm2-135m", "shape: "+shapeNames())
	fs.IntVar(&f.batch, "batch", 0, "rows per step (0: the shape's)")
	fs.IntVar(&f.seq, "seq", 0, "tokens per row (0: the shape's)")
	fs.IntVar(&f.rank, "rank", 16, "LoRA rank (alpha = 2·rank)")
	fs.BoolVar(&f.nf4, "nf4", false, "QLoRA: NF4 projection weights")
	fs.BoolVar(&f.ckpt, "ckpt", false, "gradient checkpointing per decoder block")
	fs.BoolVar(&f.offload, "offload", false, "with -ckpt: the saved block inputs in pinned host memory, as ftune train's training.offload_checkpoints")
	fs.IntVar(&f.mlpChunk, "mlp-chunk", 0, "the MLP over chunks of this many tokens, as ftune train's training.mlp_chunk_tokens (0: all at once)")
	fs.StringVar(&f.gemmProvider, "gemm-provider", string(cudabackend.GEMMAuto), "who computes the GPU's matrix products, as ftune train's setting: auto (per shape the faster of ftune's kernels and cuBLASLt), ftune or cublaslt")
	fs.StringVar(&f.attentionKernel, "attention-kernel", string(cudabackend.AttentionAuto), "which GPU attention kernels run, as ftune train's setting: auto (the tensor-core flash kernels in bf16 on the head sizes they take), flash or simt")
	fs.BoolVar(&f.unfusedLoRA, "unfused-lora", false, "run each LoRA layer's base and low-rank products as two GEMMs, as before the fused kernel (its before/after)")
	fs.Float64Var(&f.loraDropout, "lora-dropout", 0, "LoRA dropout p (the anchor's 0 by default; ftune train's default is 0.05)")
	fs.BoolVar(&f.wgmma, "wgmma", false, "ftune's nt and nn products (the Linear layers' forward and input gradient, fused LoRA ones included) on the sm_90a wgmma kernels (compute capability 9.0)")
	fs.StringVar(&f.wgmmaLoads, "wgmma-loads", "", "with -wgmma: the kernels' loads, "+strings.Join(cuda.WGMMALoadsNames, ", ")+" (default cp.async)")
	fs.BoolVar(&f.f32, "f32", false, "float32 GEMMs (the parity path) instead of bf16 tensor cores")
	fs.IntVar(&f.warmup, "warmup", 1, "untimed steps")
	fs.IntVar(&f.steps, "steps", 3, "timed steps")
	fs.StringVar(&f.cache, "cache", os.TempDir(), "folder for the random-weight model")
	fs.StringVar(&f.profile, "profile", "", "write the per-op profile of one extra step (markdown) to this file")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write the host's CPU profile of the run (go tool pprof) to this file")
	fs.BoolVar(&f.hostOnly, "host-only", false, "on the simulated device (go build -tags cudasim), check and queue every kernel, memset and device copy but run none: the step's time is then the host's alone (results are garbage)")
	fs.BoolVar(&f.cpu, "cpu", false, "run on the CPU backend (a dry run of this program without a GPU, e.g. with -shape tiny-base)")
	fs.Float64Var(&f.maxDeviceMemoryGiB, "max-device-memory-gib", 0, "refuse device allocations past this many GiB (0: no cap)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("step: unexpected argument %q", fs.Arg(0))
	}
	s, ok := shapeOf(f.shape)
	if !ok {
		return f, fmt.Errorf("step: unknown shape %q (want one of %s)", f.shape, shapeNames())
	}
	if f.batch == 0 {
		f.batch = s.Batch
	}
	if f.seq == 0 {
		f.seq = s.Seq
	}
	switch {
	case f.batch < 1 || f.seq < 2:
		return f, fmt.Errorf("step: -batch %d -seq %d: want batch ≥ 1 and seq ≥ 2", f.batch, f.seq)
	case f.rank < 1:
		return f, fmt.Errorf("step: -rank %d: want ≥ 1", f.rank)
	case f.steps < 1 || f.warmup < 0:
		return f, fmt.Errorf("step: -steps %d -warmup %d: want steps ≥ 1, warmup ≥ 0", f.steps, f.warmup)
	case f.mlpChunk < 0:
		return f, fmt.Errorf("step: -mlp-chunk %d: want ≥ 0", f.mlpChunk)
	case f.offload && f.cpu:
		return f, errors.New("step: -offload with -cpu: the CPU's memory is host memory already")
	case f.offload && !f.ckpt:
		return f, errors.New("step: -offload moves -ckpt's saved block inputs to host memory; add -ckpt")
	case f.nf4 && f.f32:
		return f, errors.New("step: -nf4 runs bf16 GEMMs; drop -f32")
	case f.hostOnly && !cuda.Simulated:
		return f, errors.New("step: -host-only needs the simulated device: build gpubench with -tags cudasim")
	case f.hostOnly && f.cpu:
		return f, errors.New("step: -host-only times the CUDA backend's host side; drop -cpu")
	case f.wgmma && (f.cpu || f.f32):
		return f, errors.New("step: -wgmma: the wgmma GEMM is a bf16 GPU kernel; drop -cpu or -f32")
	case f.wgmmaLoads != "" && !f.wgmma:
		return f, fmt.Errorf("step: -wgmma-loads %s: add -wgmma", f.wgmmaLoads)
	case f.wgmmaLoads != "" && !cuda.WGMMALoads(f.wgmmaLoads).Valid():
		return f, fmt.Errorf("step: -wgmma-loads %q: want one of %s", f.wgmmaLoads, strings.Join(cuda.WGMMALoadsNames, ", "))
	case f.unfusedLoRA && (f.cpu || f.f32):
		return f, errors.New("step: -unfused-lora: the fused LoRA GEMM runs on the GPU in bf16 only; with -cpu or -f32 the products always run apart (drop the flag)")
	case f.loraDropout < 0 || f.loraDropout >= 1:
		return f, fmt.Errorf("step: -lora-dropout %g: want 0 ≤ p < 1", f.loraDropout)
	case f.maxDeviceMemoryGiB < 0:
		return f, fmt.Errorf("step: -max-device-memory-gib %g: want ≥ 0", f.maxDeviceMemoryGiB)
	}
	p, err := cudabackend.ParseGEMMProvider(f.gemmProvider)
	if err != nil {
		return f, fmt.Errorf("step: -gemm-provider: %w", err)
	}
	if f.gemmProvider = string(p); f.cpu && p != cudabackend.GEMMAuto {
		return f, fmt.Errorf("step: -gemm-provider %s with -cpu: the CPU has its own kernels (drop the flag)", p)
	}
	a, err := cudabackend.ParseAttentionKernel(f.attentionKernel)
	if err != nil {
		return f, fmt.Errorf("step: -attention-kernel: %w", err)
	}
	if f.attentionKernel = string(a); f.cpu && a != cudabackend.AttentionAuto {
		return f, fmt.Errorf("step: -attention-kernel %s with -cpu: the CPU has its own kernels (drop the flag)", a)
	}
	return f, nil
}

// shapeOf looks a shape up. tiny-base is not one of issue 10's rows but
// the size a dry run takes: on the CPU (-cpu), and on the PTX simulator
// (go run -tags cudasim), where a step of 2 × 256 takes minutes and the
// caching allocator's peak is the one a GPU would report.
func shapeOf(name string) (bench.Shape, bool) {
	if s, ok := bench.GPUShapes[name]; ok {
		return s, true
	}
	if name == "tiny-base" {
		return bench.Shapes[name], true
	}
	return bench.Shape{}, false
}

func shapeNames() string {
	return "smollm2-135m, llama-3.2-1b, llama-3-8b, llama-3.1-8b-maxctx, tiny-base (dry runs)"
}

// variant names the ftune configuration in a row.
func (f stepFlags) variant() string {
	v := "bf16"
	if f.cpu {
		return "cpu f32 (dry run)"
	}
	if f.f32 {
		v = "f32"
	}
	if f.nf4 {
		v = "nf4"
	}
	if f.rank != 16 {
		v += fmt.Sprintf(" r%d", f.rank)
	}
	if f.offload {
		v += " offload"
	}
	if f.mlpChunk > 0 {
		v += fmt.Sprintf(" mlp-chunk%d", f.mlpChunk)
	}
	if f.gemmProvider != string(cudabackend.GEMMAuto) {
		v += " " + f.gemmProvider + "-gemm"
	}
	if f.attentionKernel != string(cudabackend.AttentionAuto) {
		v += " " + f.attentionKernel + "-attention"
	}
	if f.unfusedLoRA {
		v += " unfused-lora"
	}
	if f.wgmma {
		v += " wgmma"
		if f.wgmmaLoads != "" {
			v += "-" + f.wgmmaLoads
		}
	}
	if f.loraDropout > 0 {
		v += fmt.Sprintf(" dropout%g", f.loraDropout)
	}
	if f.hostOnly {
		v += " host-only (ptxsim, no device work)"
	}
	return v
}

func stepCmd(args []string, stdout io.Writer) error {
	f, err := parseStep(args)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	row, err := measure(f)
	if err != nil {
		return err
	}
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

// startCPUProfile profiles the host until the returned function runs.
func startCPUProfile(path string) (stop func(), err error) {
	w, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); w.Close() }, nil
}

func writeProfile(f stepFlags, prof *bench.ProfiledBackend, profiled, unprofiled float64, gemmProvider, optimizerPath string) error {
	w, err := os.Create(f.profile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### %s, %d × %d, %s%s\n\nOne step of the trainer with a device synchronization after every backend call: %.3f s (unprofiled %.3f s). GEMM provider %s; optimizer step: %s.\n\n",
		f.shape, f.batch, f.seq, f.variant(), map[bool]string{true: ", checkpointed"}[f.ckpt], profiled, unprofiled, gemmProvider, optimizerPath)
	if err := prof.WriteTable(w, profiled); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func rowsCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gpubench rows", flag.ContinueOnError)
	anchor := fs.String("anchor", "", "the anchor's gpubench.json (bench/peft_lora_bench.py)")
	ftune := fs.String("ftune", "", "ftune's rows, JSON lines (gpubench step output)")
	out := fs.String("o", "", "write the merged rows here (JSON lines)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ftune == "" || *out == "" {
		return errors.New("rows: -ftune and -o are required")
	}
	var rows []bench.GPURow
	if *anchor != "" {
		a, failed, err := bench.AnchorRows(*anchor)
		if err != nil {
			return err
		}
		for _, k := range failed {
			fmt.Fprintf(stdout, "anchor run %s failed (its traceback is in the anchor's log): no ratio for it\n\n", k)
		}
		rows = append(rows, a...)
	}
	fr, err := os.Open(*ftune)
	if err != nil {
		return err
	}
	defer fr.Close()
	r, err := bench.ReadRows(fr, *ftune)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	w, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := bench.WriteRows(w, rows); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return bench.WriteRatioTable(stdout, rows)
}
