package nn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/tensor"
)

// LoadOptions control how weights are placed.
type LoadOptions struct {
	Backend tensor.Backend // nil = CPU
	// DType is the compute dtype; zero = F32.
	DType tensor.DType
	// KeepBF16 keeps bf16 projection and embedding weights in bf16 (frozen:
	// GEMMs convert them while packing). Otherwise they are widened to DType.
	KeepBF16 bool
	// Trainable makes every base weight a trainable parameter (full
	// fine-tuning); otherwise they are frozen.
	Trainable bool
	// Quantize, when set, replaces each decoder projection weight (q, k, v,
	// o, gate, up, down; Phi-3's fused qkv and gate_up as one tensor each)
	// by a quantized tensor as it is loaded (QLoRA's load_in_4bit; package
	// quant/nf4 provides the NF4 one). Embeddings, norms and lm_head stay as
	// they are. w is the loader's scratch buffer, reused for the next
	// tensor: Quantize must copy what it keeps.
	Quantize func(name string, w []float32, shape []int) (*tensor.Tensor, error)
}

// isProjection reports whether a parameter is a decoder linear weight.
func isProjection(name string) bool {
	return strings.HasPrefix(name, "model.layers.") && strings.HasSuffix(name, "_proj.weight")
}

// Load reads a Hugging Face model folder (config.json plus
// model.safetensors or a sharded index, and generation_config.json when
// there is one: Config.Generation).
func Load(dir string, opt LoadOptions) (*Model, error) {
	return LoadContext(context.Background(), dir, opt)
}

// LoadContext is Load stopping before the next tensor once ctx is done,
// with an error wrapping ctx's: an 8B model's 16 GB take a minute to read,
// convert or quantize, and a Ctrl-C (or a service giving up) should not
// wait for the rest.
func LoadContext(ctx context.Context, dir string, opt LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg.Generation, err = LoadGenerationDefaults(dir, cfg.VocabSize); err != nil {
		return nil, err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("nn: load %s: %w", dir, err)
	}
	defer set.Close()
	m, err := build(ctx, cfg, set, opt, dir)
	if err != nil {
		return nil, err
	}
	if m.Source.Hash, err = fingerprintFiles(dir, set.Shards()); err != nil {
		return nil, err
	}
	m.Source.Dir = dir
	return m, nil
}

// tensorSource is what build needs from a safetensors set.
type tensorSource interface {
	Tensor(name string) (safetensors.Tensor, error)
	Has(name string) bool
	Names() []string
	FileOf(name string) string
	Shards() []string
	Release(name string)
}

// expectedShapes lists every parameter config.json implies, with its shape.
func (c Config) expectedShapes() map[string][]int {
	H, I, V := c.HiddenSize, c.IntermediateSize, c.VocabSize
	qd, kvd := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	s := map[string][]int{
		"model.embed_tokens.weight": {V, H},
		"model.norm.weight":         {H},
	}
	if !c.TieEmbeddings {
		s["lm_head.weight"] = []int{V, H}
	}
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		if c.FusedProjections {
			s[p+"self_attn.qkv_proj.weight"] = []int{qd + 2*kvd, H}
			s[p+"mlp.gate_up_proj.weight"] = []int{2 * I, H}
		} else {
			s[p+"self_attn.q_proj.weight"] = []int{qd, H}
			s[p+"self_attn.k_proj.weight"] = []int{kvd, H}
			s[p+"self_attn.v_proj.weight"] = []int{kvd, H}
			s[p+"mlp.gate_proj.weight"] = []int{I, H}
			s[p+"mlp.up_proj.weight"] = []int{I, H}
		}
		s[p+"self_attn.o_proj.weight"] = []int{H, qd}
		if c.QKNorm {
			s[p+"self_attn.q_norm.weight"] = []int{c.HeadDim}
			s[p+"self_attn.k_norm.weight"] = []int{c.HeadDim}
		}
		if c.SandwichNorms {
			s[p+"pre_feedforward_layernorm.weight"] = []int{H}
			s[p+"post_feedforward_layernorm.weight"] = []int{H}
		}
		if c.AttentionBias {
			s[p+"self_attn.q_proj.bias"] = []int{qd}
			s[p+"self_attn.k_proj.bias"] = []int{kvd}
			s[p+"self_attn.v_proj.bias"] = []int{kvd}
		}
		if c.OutputBias {
			s[p+"self_attn.o_proj.bias"] = []int{H}
		}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
		if c.MLPBias {
			s[p+"mlp.gate_proj.bias"] = []int{I}
			s[p+"mlp.up_proj.bias"] = []int{I}
			s[p+"mlp.down_proj.bias"] = []int{H}
		}
	}
	return s
}

func build(ctx context.Context, cfg Config, src tensorSource, opt LoadOptions, where string) (*Model, error) {
	if opt.Backend == nil {
		opt.Backend = tensor.CPUDefault()
	}
	if opt.DType == 0 {
		opt.DType = tensor.F32
	}
	if cfg.HiddenAct == gemma3Activation && !tensor.SupportsGeGLU(opt.Backend) {
		return nil, fmt.Errorf("%w: %s: the %T backend has no GeGLU (gelu_pytorch_tanh gated MLP) kernel, which %s needs; run it on the CPU", ErrUnsupported, where, opt.Backend, cfg.ModelType)
	}
	if err := checkSoftcapBackend(cfg, opt.Backend, where); err != nil {
		return nil, err
	}
	if err := checkLayerCount(cfg, src, where); err != nil {
		return nil, err
	}
	shapes := cfg.expectedShapes()
	if err := checkUnused(cfg, src, shapes, where); err != nil {
		return nil, err
	}
	vars := map[string]*autograd.Var{}
	var err error
	// Conversions whose float32 form is only a step (quantizing, rounding
	// to bf16, widening to float64) decode into one reused buffer, so
	// loading leaves no garbage for the collector to pace the heap by.
	var scratch []float32
	perr := tensor.Catch(func() {
		names := make([]string, 0, len(shapes))
		for name := range shapes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if err = ctx.Err(); err != nil {
				err = fmt.Errorf("nn: load %s: stopped before tensor %q: %w", where, name, err)
				return
			}
			want := shapes[name]
			var st safetensors.Tensor
			st, err = src.Tensor(name)
			if err != nil {
				err = fmt.Errorf("nn: %s: tensor %q required by config.json (shape %v) is in none of %v: %w", where, name, want, src.Shards(), err)
				return
			}
			file := src.FileOf(name)
			if !tensor.Shape(st.Shape).Equal(want) {
				err = fmt.Errorf("nn: %s: tensor %q has shape %v, config.json implies %v", file, name, st.Shape, want)
				return
			}
			isMatrix := len(want) == 2
			var t *tensor.Tensor
			if opt.Quantize != nil && !opt.Trainable && isProjection(name) {
				if scratch, err = safetensors.FloatsInto(scratch, st); err == nil {
					t, err = opt.Quantize(name, scratch, st.Shape)
				}
			} else {
				t, err = toTensor(opt.Backend, st, opt.DType, opt.KeepBF16 && isMatrix && !opt.Trainable, &scratch)
			}
			if err != nil {
				err = fmt.Errorf("nn: %s: tensor %q: %w", src.FileOf(name), name, err)
				return
			}
			// The tensor is copied out of the file's mapping: its pages
			// need not stay resident (a model's file would otherwise add
			// its whole size to the load's peak memory).
			src.Release(name)
			if opt.Trainable {
				vars[name] = autograd.Param(t, name)
			} else {
				vars[name] = autograd.Frozen(t, name)
			}
		}
	})
	if perr != nil {
		return nil, perr
	}
	if err != nil {
		return nil, err
	}
	return assemble(cfg, vars, opt.Backend, opt.DType), nil
}

// assemble wires named parameters into modules.
func assemble(cfg Config, vars map[string]*autograd.Var, be tensor.Backend, dt tensor.DType) *Model {
	m := &Model{Config: cfg, Backend: be, DType: dt, Embed: vars["model.embed_tokens.weight"], Norm: vars["model.norm.weight"], ropeRows: &ropeCache{}}
	lin := func(name string) *Linear {
		return &Linear{Name: name, Weight: vars[name+".weight"], Bias: vars[name+".bias"]}
	}
	for i := 0; i < cfg.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		b := &Block{
			Index:        i,
			InputNorm:    vars[p+"input_layernorm.weight"],
			PostAttnNorm: vars[p+"post_attention_layernorm.weight"],
			Attn:         Attention{Q: lin(p + "self_attn.q_proj"), K: lin(p + "self_attn.k_proj"), V: lin(p + "self_attn.v_proj"), O: lin(p + "self_attn.o_proj")},
			MLP:          MLP{Gate: lin(p + "mlp.gate_proj"), Up: lin(p + "mlp.up_proj"), Down: lin(p + "mlp.down_proj")},
			QNorm:        vars[p+"self_attn.q_norm.weight"],
			KNorm:        vars[p+"self_attn.k_norm.weight"],
			PreFFNNorm:   vars[p+"pre_feedforward_layernorm.weight"],
			PostFFNNorm:  vars[p+"post_feedforward_layernorm.weight"],
		}
		if cfg.FusedProjections {
			b.Attn = Attention{QKV: lin(p + "self_attn.qkv_proj"), O: lin(p + "self_attn.o_proj")}
			b.MLP = MLP{GateUp: lin(p + "mlp.gate_up_proj"), Down: lin(p + "mlp.down_proj")}
		}
		if cfg.SlidingLayers[i] {
			b.SlidingWindow = cfg.SlidingWindow
		}
		if cfg.NoRopeLayers != nil {
			b.NoRope = cfg.NoRopeLayers[i]
		}
		m.Layers = append(m.Layers, b)
	}
	if cfg.TieEmbeddings {
		m.LMHead = &Linear{Name: "lm_head", Weight: m.Embed}
	} else {
		m.LMHead = lin("lm_head")
	}
	return m
}

// toTensor converts safetensors bytes (little-endian) into a tensor of the
// compute dtype, or keeps bf16 bits when keepBF16. scratch is a buffer
// reused across calls for conversions that go through float32.
func toTensor(be tensor.Backend, st safetensors.Tensor, dt tensor.DType, keepBF16 bool, scratch *[]float32) (*tensor.Tensor, error) {
	n := st.NumElements()
	if st.DType == safetensors.BF16 && (keepBF16 || dt == tensor.BF16) {
		// bf16 to bf16 is a copy: widening and rounding back would give
		// the same bits (NaN payloads aside, which it would make canonical).
		u := make([]uint16, n)
		data := st.Data[:2*n] // one bounds check for the loop
		for i := range u {
			u[i] = uint16(data[2*i]) | uint16(data[2*i+1])<<8
		}
		return tensor.FromHost(be, tensor.BF16, u, st.Shape...), nil
	}
	if dt == tensor.F32 {
		// The backend takes the slice as the tensor's storage.
		f, err := safetensors.Floats(st)
		if err != nil {
			return nil, err
		}
		return tensor.FromHost(be, tensor.F32, f, st.Shape...), nil
	}
	f, err := safetensors.FloatsInto(*scratch, st)
	if err != nil {
		return nil, err
	}
	*scratch = f
	switch dt {
	case tensor.F64:
		d := make([]float64, n)
		for i, v := range f {
			d[i] = float64(v)
		}
		return tensor.FromHost(be, tensor.F64, d, st.Shape...), nil
	case tensor.BF16:
		// bf16 activations: every weight in bf16, as transformers holds a
		// model loaded in torch.bfloat16 (norm weights and biases too).
		u := make([]uint16, n)
		for i, v := range f {
			u[i] = tensor.F32ToBF16(v)
		}
		return tensor.FromHost(be, tensor.BF16, u, st.Shape...), nil
	}
	return nil, fmt.Errorf("compute dtype %s: want F32, BF16 or F64", dt)
}

// Exists reports whether dir looks like a model folder.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "config.json"))
	return err == nil
}
