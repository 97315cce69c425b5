package bench

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ftune/ftune/quant/nf4"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/kernels/asm"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train/dpo"
)

// Shape is a Llama-architecture model shape and the batch it is trained
// on; the same table is in torch_cpu_lora.py (SHAPES).
type Shape struct {
	Name                                       string
	Vocab, Hidden, Layers, Heads, KVHeads, FFN int
	Batch, Seq                                 int
}

// Shapes are the two CPU benchmark shapes: tiny-base (the repository's
// real 6-layer model) and SmolLM2-135M (random weights).
var Shapes = map[string]Shape{
	"tiny-base":    {Name: "tiny-base", Vocab: 4096, Hidden: 256, Layers: 6, Heads: 8, KVHeads: 4, FFN: 704, Batch: 8, Seq: 256},
	"smollm2-135m": {Name: "smollm2-135m", Vocab: 49152, Hidden: 576, Layers: 30, Heads: 9, KVHeads: 3, FFN: 1536, Batch: 1, Seq: 512},
}

// LoRARun describes one throughput measurement.
type LoRARun struct {
	Shape    Shape
	ModelDir string // Hugging Face folder holding the weights of Shape
	Family   string // one of Families: the folder must be of it ("" = not checked)
	Threads  int    // GOMAXPROCS and GEMM workers
	NF4      bool   // QLoRA: projections stored NF4; else bf16 frozen weights
	// BF16 runs the products in precision bf16 (tensor.CPUBF16: operands
	// rounded to bf16, VDPBF16PS); else float32.
	BF16   bool
	Warmup int  // untimed steps
	NoPool bool // leave the step's memory to Go's collector (train.Config.HeapOnly)
	// DPO times a DPO step instead (train/dpo: the reference's forward
	// without gradients, the policy's, its backward, AdamW) on max(1,
	// Batch/2) pairs of Seq-token rows: a prompt of Seq/2 tokens and
	// completions of the rest, as torch_cpu_dpo.py does.
	DPO bool
	// DPOLoss is the DPO step's loss type (dpo.Spec.Types, "": sigmoid);
	// orpo and simpo run no reference forward.
	DPOLoss string
	// DoRA trains DoRA (lora.Config.UseDoRA) instead of LoRA, and Dropout
	// is lora_dropout (0: none), as torch_cpu_peft.py's --dora and
	// --dropout.
	DoRA    bool
	Dropout float64
	Steps   int // timed steps
	// Timed, when set, is called just before the timed steps (to start a
	// profile that leaves out loading and warm-up).
	Timed func()
}

// LoRAResult is one measurement (JSON field names match the torch side).
type LoRAResult struct {
	Side        string    `json:"side"`
	Shape       string    `json:"shape"`
	Family      string    `json:"family,omitempty"`
	Quant       string    `json:"quant"`
	Precision   string    `json:"precision"`           // f32 or bf16 (the products; see LoRARun.BF16)
	Objective   string    `json:"objective,omitempty"` // "dpo" or "dpo/<loss type>", or empty: the LoRA step
	NoPool      bool      `json:"no_pool,omitempty"`   // the step's memory left to Go's collector (LoRARun.NoPool)
	DoRA        bool      `json:"dora,omitempty"`      // LoRARun.DoRA
	Dropout     float64   `json:"dropout,omitempty"`   // lora_dropout (LoRARun.Dropout)
	Threads     int       `json:"threads"`
	Batch       int       `json:"batch"`
	Seq         int       `json:"seq"`
	StepS       float64   `json:"step_s"`
	StepsS      []float64 `json:"steps_s"` // each timed step's wall time
	TokensPerS  float64   `json:"tokens_per_s"`
	PeakRSSMiB  float64   `json:"peak_rss_mib"`
	CPUSPerStep float64   `json:"cpu_s_per_step"` // user+sys of the process per timed step
	Loss        float64   `json:"loss"`
}

// RunLoRA loads the model, attaches LoRA r=16 alpha=32 to all seven
// projections of every block and times full training steps (forward with
// the chunked loss, backward, AdamW, zero grad) as torch_cpu_lora.py does.
func RunLoRA(r LoRARun) (LoRAResult, error) {
	runtime.GOMAXPROCS(r.Threads)
	asm.SetThreads(r.Threads)
	be, precision := tensor.CPUDefault(), "f32"
	if r.BF16 {
		if !tensor.CPUBF16Fast() {
			return LoRAResult{}, fmt.Errorf("bench: precision bf16 on this CPU runs the Go kernel, not a speed measurement (the fast one needs %s)", cmp.Or(tensor.CPUBF16Instructions(), "an amd64 or arm64 build"))
		}
		be, precision = tensor.CPUBF16(), "bf16"
	}
	opt := nn.LoadOptions{KeepBF16: true, Backend: be}
	quant := "f32"
	if r.NF4 {
		opt.Quantize = nf4.Quantizer(be)
		quant = "nf4"
	}
	m, err := nn.Load(r.ModelDir, opt)
	if err != nil {
		return LoRAResult{}, err
	}
	if c := m.Config; c.HiddenSize != r.Shape.Hidden || c.NumLayers != r.Shape.Layers || c.VocabSize != r.Shape.Vocab {
		return LoRAResult{}, fmt.Errorf("bench: %s is not of shape %s", r.ModelDir, r.Shape.Name)
	}
	if r.Family != "" {
		want, err := familyConfig(r.Family, r.Shape, DefaultWindow)
		if err != nil {
			return LoRAResult{}, err
		}
		if m.Config.ModelType != want["model_type"] {
			return LoRAResult{}, fmt.Errorf("bench: %s is a %s model, not %s", r.ModelDir, m.Config.ModelType, r.Family)
		}
	}
	lc := lora.NewConfig(16, 32, "all-linear")
	lc.UseDoRA, lc.LoraDropout = r.DoRA, r.Dropout
	ad, err := lora.New(m, lc, "default", 1)
	if err != nil {
		return LoRAResult{}, err
	}
	if err := ad.Attach(m); err != nil {
		return LoRAResult{}, err
	}
	adam, err := optim.NewAdamW(optim.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2})
	if err != nil {
		return LoRAResult{}, err
	}
	params := ad.Params()
	B, T := r.Shape.Batch, r.Shape.Seq
	rng := rand.New(rand.NewPCG(0, 1))
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64(rng.IntN(r.Shape.Vocab))
	}
	batch := nn.Batch{
		InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, B, T),
		Labels:   tensor.FromHost(m.Backend, tensor.I64, ids, B, T),
	}
	forward := func(tp *autograd.Tape) (*autograd.Var, error) {
		out, err := m.Forward(tp, batch, nn.ForwardOptions{LossOnly: true})
		return out.Loss, err
	}
	rows, objective := B, ""
	if r.DPO {
		var dpoForward func(*autograd.Tape) (*autograd.Var, error)
		if dpoForward, rows, err = dpoStep(m, ad, B, T, rng, r.DPOLoss); err != nil {
			return LoRAResult{}, err
		}
		forward, objective = dpoForward, "dpo"
		if r.DPOLoss != "" {
			objective += "/" + r.DPOLoss
		}
	}
	var loss float64
	// As the trainer does: the tape releases each activation and gradient
	// after its last use, the step its parameters' gradients, and on the
	// CPU the pool hands the buffers to the next step (tensor.UseCPUPool).
	if _, cpu := m.Backend.(*tensor.CPUBackend); cpu && !r.NoPool {
		defer tensor.UseCPUPool()()
	}
	step := func() error {
		defer tensor.ServeFromCPUPool()()
		tp := autograd.NewTape()
		tp.ReleaseActivations = true
		l, err := forward(tp)
		if err != nil {
			return err
		}
		loss = l.Value.Item()
		if err := tp.Backward(l); err != nil {
			return err
		}
		ps := make([]optim.Param, 0, len(params))
		for name, v := range params {
			p := optim.Param{Name: name, Data: tensor.F32Data(v.Value)}
			if v.Grad != nil {
				p.Grad = tensor.F32Data(v.Grad)
			}
			ps = append(ps, p)
		}
		if err := adam.Step(ps); err != nil {
			return err
		}
		for _, v := range params {
			if v.Grad != nil {
				if err := tensor.Release(v.Grad); err != nil {
					return err
				}
			}
			v.ZeroGrad()
		}
		tensor.TrimCPUPool()
		return nil
	}
	for i := 0; i < r.Warmup; i++ {
		if err := step(); err != nil {
			return LoRAResult{}, err
		}
	}
	if r.Timed != nil {
		r.Timed()
	}
	c0 := CPUSeconds()
	t0 := time.Now()
	each := make([]float64, r.Steps)
	for i := 0; i < r.Steps; i++ {
		ti := time.Now()
		if err := step(); err != nil {
			return LoRAResult{}, err
		}
		each[i] = round4(time.Since(ti).Seconds())
	}
	dt := time.Since(t0).Seconds() / float64(max(r.Steps, 1))
	cpu := (CPUSeconds() - c0) / float64(max(r.Steps, 1))
	return LoRAResult{
		Side: "ftune", Shape: r.Shape.Name, Family: r.Family, Quant: quant, Precision: precision, Objective: objective, NoPool: r.NoPool, DoRA: r.DoRA, Dropout: r.Dropout, Threads: r.Threads, Batch: rows, Seq: T,
		StepS: round4(dt), StepsS: each, TokensPerS: math.Round(float64(rows*T)/dt*10) / 10, PeakRSSMiB: math.Round(PeakRSSMiB()*10) / 10, CPUSPerStep: round4(cpu), Loss: round4(loss),
	}, nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// dpoStep is LoRARun.DPO's loss: max(1, B/2) pairs of random tokens, each
// row T tokens (a prompt of T/2, completions of T − T/2), the reference
// being the model with adapter a detached, the loss lossType ("":
// sigmoid). rows is the batch's rows.
func dpoStep(m *nn.Model, a *lora.Adapter, B, T int, rng *rand.Rand, lossType string) (forward func(*autograd.Tape) (*autograd.Var, error), rows int, err error) {
	ids := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(rng.IntN(m.Config.VocabSize))
		}
		return out
	}
	pairs := make([]dpo.Pair, max(1, B/2))
	for i := range pairs {
		pairs[i] = dpo.Pair{Prompt: ids(T / 2), Chosen: ids(T - T/2), Rejected: ids(T - T/2)}
	}
	l, err := dpo.NewLoader(pairs, len(pairs), false, 0, 0, m.Backend)
	if err != nil {
		return nil, 0, err
	}
	b, err := l.Next()
	if err != nil {
		return nil, 0, err
	}
	spec := dpo.Spec{Beta: 0.1}
	if lossType != "" {
		spec.Types = []string{lossType}
	}
	if err := spec.Check(); err != nil {
		return nil, 0, err
	}
	obj := &dpo.Objective{Model: m, Spec: spec, Reference: dpo.AdapterOff(m, a)}
	return func(tp *autograd.Tape) (*autograd.Var, error) {
		out, err := obj.Forward(tp, b, nn.ForwardOptions{})
		return out.Loss, err
	}, 2 * len(pairs), nil
}

// RandomModelDir returns a Llama folder of shape s with random bf16
// weights; see RandomFamilyModelDir.
func RandomModelDir(cache string, s Shape) (string, error) {
	return RandomFamilyModelDir(cache, s, "llama", DefaultWindow)
}

// RandomFamilyModelDir returns a Hugging Face folder of family (one of
// Families) at shape s with random bf16 weights (N(0, 0.02)-like, norms
// the identity), window being the Gemma families' sliding window, creating
// it under cache on first use (the folder is built beside its final name
// and renamed into place, so a half-written one is never reused).
func RandomFamilyModelDir(cache string, s Shape, family string, window int) (string, error) {
	cfg, err := familyConfig(family, s, window)
	if err != nil {
		return "", err
	}
	// v2: the weights drawn block by block in parallel (randomBF16).
	name := "ftune-lorabench-" + s.Name + "-v2" // the Llama folder keeps its name
	if family != "llama" {
		name = fmt.Sprintf("ftune-lorabench-%s-%s-w%d-v2", family, s.Name, window)
	}
	dir := filepath.Join(cache, name)
	if nn.Exists(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cache, ".lorabench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := writeRandomModel(tmp, cfg, familyTensors(family, s), identityNorm(family)); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !nn.Exists(dir) {
		return "", err
	}
	return dir, nil
}

func writeRandomModel(dir string, cfg map[string]any, specs []tensorSpec, norm float32) error {
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		return err
	}
	// Each tensor is drawn when the writer reaches it, so an 8B folder
	// (16 GB) never has to fit in memory at once.
	ts := make([]safetensors.Tensor, 0, len(specs))
	for j, sp := range specs {
		n, shape := sp.Rows*max(sp.Cols, 1), []int{sp.Rows, sp.Cols}
		if sp.Cols == 0 {
			shape = []int{sp.Rows}
		}
		fill := func() ([]byte, error) {
			b := make([]byte, 2*n)
			if sp.Cols == 0 {
				fillBF16(b, 0, n, func() float32 { return norm })
			} else {
				randomBF16(b, n, uint64(j))
			}
			return b, nil
		}
		ts = append(ts, safetensors.Tensor{Name: sp.Name, DType: safetensors.BF16, Shape: shape, Fill: fill})
	}
	return safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
}

// randomBlock is the elements one random stream fills: the blocks of a
// tensor are filled in parallel, each from its own PCG stream (seeded by
// the tensor's index and the block's), so the weights do not depend on how
// many CPUs made them. One CPU took ~100 s for Llama-3-8B's 8·10⁹ weights,
// minutes of a GPU session spent before its first row.
const randomBlock = 1 << 20

// randomBF16 fills n bf16 weights of b with a sum of three uniforms scaled
// to ±0.06 (cheap and close enough to a normal of sd 0.02 for speed runs).
func randomBF16(b []byte, n int, tensorIndex uint64) {
	blocks := (n + randomBlock - 1) / randomBlock
	next := make(chan int, blocks)
	for k := range blocks {
		next <- k
	}
	close(next)
	done := make(chan struct{})
	workers := min(runtime.GOMAXPROCS(0), blocks)
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range next {
				rng := rand.New(rand.NewPCG(42+tensorIndex, uint64(k)))
				fillBF16(b, k*randomBlock, min(n, (k+1)*randomBlock), func() float32 {
					return float32((rng.Float64() + rng.Float64() + rng.Float64() - 1.5) * 0.04)
				})
			}
		}()
	}
	for range workers {
		<-done
	}
}

// fillBF16 writes v() rounded to bf16 into elements [i0, i1) of b.
func fillBF16(b []byte, i0, i1 int, v func() float32) {
	for i := i0; i < i1; i++ {
		binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToBF16(v()))
	}
}
