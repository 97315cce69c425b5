package bench

import (
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
	Threads  int    // GOMAXPROCS and GEMM workers
	NF4      bool   // QLoRA: projections stored NF4; else bf16 frozen weights
	Warmup   int    // untimed steps
	NoArena  bool   // allocate on Go's heap instead of a step arena
	Steps    int    // timed steps
	// Timed, when set, is called just before the timed steps (to start a
	// profile that leaves out loading and warm-up).
	Timed func()
}

// LoRAResult is one measurement (JSON field names match the torch side).
type LoRAResult struct {
	Side        string  `json:"side"`
	Shape       string  `json:"shape"`
	Quant       string  `json:"quant"`
	Threads     int     `json:"threads"`
	Batch       int     `json:"batch"`
	Seq         int     `json:"seq"`
	StepS       float64 `json:"step_s"`
	TokensPerS  float64 `json:"tokens_per_s"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	CPUSPerStep float64 `json:"cpu_s_per_step"` // user+sys of the process per timed step
	Loss        float64 `json:"loss"`
}

// RunLoRA loads the model, attaches LoRA r=16 alpha=32 to all seven
// projections of every block and times full training steps (forward with
// the chunked loss, backward, AdamW, zero grad) as torch_cpu_lora.py does.
func RunLoRA(r LoRARun) (LoRAResult, error) {
	runtime.GOMAXPROCS(r.Threads)
	asm.SetThreads(r.Threads)
	opt := nn.LoadOptions{KeepBF16: true}
	quant := "f32"
	if r.NF4 {
		opt.Quantize = nf4.Quantizer(tensor.CPUDefault())
		quant = "nf4"
	}
	m, err := nn.Load(r.ModelDir, opt)
	if err != nil {
		return LoRAResult{}, err
	}
	if c := m.Config; c.HiddenSize != r.Shape.Hidden || c.NumLayers != r.Shape.Layers || c.VocabSize != r.Shape.Vocab {
		return LoRAResult{}, fmt.Errorf("bench: %s is not of shape %s", r.ModelDir, r.Shape.Name)
	}
	ad, err := lora.New(m, lora.NewConfig(16, 32, "all-linear"), "default", 1)
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
	var loss float64
	// The step's activations and gradients come from an arena recycled
	// every step, as the trainer does (tensor.Arena).
	var arena *tensor.Arena
	cpuBE, _ := m.Backend.(*tensor.CPUBackend)
	if cpuBE != nil && !r.NoArena {
		arena = tensor.NewArena()
		defer arena.Release()
	}
	step := func() error {
		if arena != nil {
			arena.Reset()
			prev := cpuBE.SetArena(arena)
			defer cpuBE.SetArena(prev)
		}
		tp := autograd.NewTape()
		out, err := m.Forward(tp, batch, nn.ForwardOptions{LossOnly: true})
		if err != nil {
			return err
		}
		loss = out.Loss.Value.Item()
		if err := tp.Backward(out.Loss); err != nil {
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
			v.ZeroGrad()
		}
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
	for i := 0; i < r.Steps; i++ {
		if err := step(); err != nil {
			return LoRAResult{}, err
		}
	}
	dt := time.Since(t0).Seconds() / float64(max(r.Steps, 1))
	cpu := (CPUSeconds() - c0) / float64(max(r.Steps, 1))
	return LoRAResult{
		Side: "ftune", Shape: r.Shape.Name, Quant: quant, Threads: r.Threads, Batch: B, Seq: T,
		StepS: round4(dt), TokensPerS: math.Round(float64(B*T)/dt*10) / 10, PeakRSSMiB: math.Round(PeakRSSMiB()*10) / 10, CPUSPerStep: round4(cpu), Loss: round4(loss),
	}, nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// RandomModelDir returns a Hugging Face folder of shape s with random bf16
// weights (N(0, 0.02)-like, norms 1), creating it under cache on first use
// (the folder is built beside its final name and renamed into place, so a
// half-written one is never reused).
func RandomModelDir(cache string, s Shape) (string, error) {
	dir := filepath.Join(cache, "ftune-lorabench-"+s.Name+"-v1")
	if nn.Exists(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cache, ".lorabench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := writeRandomModel(tmp, s); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !nn.Exists(dir) {
		return "", err
	}
	return dir, nil
}

func writeRandomModel(dir string, s Shape) error {
	hd := s.Hidden / s.Heads
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"vocab_size": s.Vocab, "hidden_size": s.Hidden, "intermediate_size": s.FFN,
		"num_hidden_layers": s.Layers, "num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads,
		"head_dim": hd, "rms_norm_eps": 1e-5, "max_position_embeddings": 8192, "rope_theta": 10000.0,
		"tie_word_embeddings": true, "attention_bias": false, "mlp_bias": false, "hidden_act": "silu",
		"torch_dtype": "bfloat16",
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(42, 7))
	mat := func(name string, rows, cols int) safetensors.Tensor {
		b := make([]byte, 2*rows*cols)
		for i := 0; i < rows*cols; i++ {
			// Sum of uniforms: cheap and close enough to a normal for speed runs.
			v := float32((rng.Float64()+rng.Float64()+rng.Float64()-1.5)*0.04) * 1
			binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToBF16(v))
		}
		return safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: []int{rows, cols}, Data: b}
	}
	ones := func(name string, n int) safetensors.Tensor {
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToBF16(1))
		}
		return safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: []int{n}, Data: b}
	}
	H, kv := s.Hidden, s.KVHeads*hd
	ts := []safetensors.Tensor{mat("model.embed_tokens.weight", s.Vocab, H), ones("model.norm.weight", H)}
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			ones(p+"input_layernorm.weight", H), ones(p+"post_attention_layernorm.weight", H),
			mat(p+"self_attn.q_proj.weight", H, H), mat(p+"self_attn.k_proj.weight", kv, H),
			mat(p+"self_attn.v_proj.weight", kv, H), mat(p+"self_attn.o_proj.weight", H, H),
			mat(p+"mlp.gate_proj.weight", s.FFN, H), mat(p+"mlp.up_proj.weight", s.FFN, H),
			mat(p+"mlp.down_proj.weight", H, s.FFN))
	}
	return safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
}
