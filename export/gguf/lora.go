package gguf

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// WriteLoRA writes a as a llama.cpp LoRA adapter for m (what
// convert_lora_to_gguf.py makes from a PEFT folder): general.type
// "adapter", adapter.type "lora", adapter.lora.alpha, and for each adapted
// weight W two tensors W.lora_a ([r, in] as PyTorch stores lora_A) and
// W.lora_b ([out, r]), in type ftype where the rows fill whole blocks and
// F16 otherwise.
//
// llama.cpp scales each pair by alpha/r with r read from lora_b's shape.
// Where PEFT's scale differs (use_rslora's alpha/√r, rank_pattern,
// alpha_pattern), the ratio is folded into lora_b, so the file computes
// PEFT's update exactly. On the "llama" architecture the rows of q_proj's
// and k_proj's lora_b are permuted like the base weights (the converter
// applies the same permutation to its LoRA tensor, which moves B's rows
// and leaves A alone).
func WriteLoRA(path string, m *nn.Model, a *lora.Adapter, ftype FileType) error {
	return WriteLoRAContext(context.Background(), path, m, a, ftype)
}

// WriteLoRAContext is WriteLoRA stopped by a cancelled ctx before the next
// tensor, as WriteModelWith: the file is written atomically, one tensor at
// a time, and a cancelled write leaves no file (an earlier one at path
// stays as it was) and an error wrapping ctx's.
func WriteLoRAContext(ctx context.Context, path string, m *nn.Model, a *lora.Adapter, ftype FileType) error {
	b, err := buildLoRA(ctx, m, a, ftype, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	if err != nil {
		return err
	}
	if err := b.WriteFile(path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// LoRATypeNotes says which tensors of the file WriteLoRA writes of a for
// m in type ft are stored as F16 instead, because their rows do not fill
// whole blocks of ft's type (lora_b's rows are the rank, 8 or 16 values
// where Q8_0 and Q4_0 take blocks of 32), as TypeNotes says a model's;
// nil when every tensor gets ft's type.
func LoRATypeNotes(m *nn.Model, a *lora.Adapter, ft FileType) ([]string, error) {
	b, err := BuildLoRA(m, a, ft, "")
	if err != nil {
		return nil, err
	}
	wtype, err := ft.TensorType()
	if err != nil {
		return nil, err
	}
	planned := make([]plannedTensor, len(b.tensors))
	for i, t := range b.tensors {
		shape := make([]int, len(t.dims)) // PyTorch's order: rows last
		for j, d := range t.dims {
			shape[len(shape)-1-j] = int(d)
		}
		planned[i] = plannedTensor{t.name, shape, t.typ, wtype}
	}
	return fallbackNotes(ft, planned, "LoRA tensors", "as llama.cpp's converter stores them"), nil
}

// BuildLoRA prepares the file WriteLoRA writes; name is general.name.
func BuildLoRA(m *nn.Model, a *lora.Adapter, ftype FileType, name string) (*Builder, error) {
	return buildLoRA(context.Background(), m, a, ftype, name)
}

// CheckLoRAType refuses a file type a LoRA adapter's GGUF is not written
// in: one of the quantization mixes but q4_0. A and B are small, and a
// LoRA's rank-wide rows are not whole 256-value blocks: the mixes are for
// the model's weights (a LoRA's q4_0 is every tensor in Q4_0, as
// convert_lora_to_gguf has no mix). Exported so that a command can refuse
// the type before it loads a model.
func CheckLoRAType(ftype FileType) error {
	if ftype.isMix() && ftype != FileQ4_0 {
		return fmt.Errorf("gguf: a LoRA adapter takes f32, f16, bf16, q8_0 or q4_0, not %s (a quantization mix is for the merged model: --format gguf)", ftype)
	}
	return nil
}

// buildLoRA is BuildLoRA with A and B read from the adapter when the
// builder writes them, checking ctx before each (as BuildModel).
func buildLoRA(ctx context.Context, m *nn.Model, a *lora.Adapter, ftype FileType, name string) (*Builder, error) {
	c := m.Config
	arch, permute, err := Architecture(c.ModelType)
	if err != nil {
		return nil, err
	}
	if err := CheckLoRAType(ftype); err != nil {
		return nil, err
	}
	wtype, err := ftype.TensorType()
	if err != nil {
		return nil, err
	}
	if a.Config.UseDoRA {
		// llama.cpp's adapters are A and B pairs added to W; DoRA's
		// per-row rescaling by m/‖W + s·B·A‖ has no place in them.
		return nil, fmt.Errorf("gguf: adapter %q is DoRA (use_dora), which llama.cpp's LoRA adapters cannot express (no magnitude vector); export the merged model instead (ftune export --format gguf or --format merged)", a.Name)
	}
	if len(a.Copies) > 0 {
		return nil, fmt.Errorf("gguf: adapter %q trains full copies of %s (modules_to_save), which llama.cpp's LoRA adapters cannot carry; export the merged model instead (ftune export --format gguf or --format merged)", a.Name, strings.Join(slices.Sorted(maps.Keys(a.Copies)), ", "))
	}
	if err := export.CheckAdapterFinite(a); err != nil {
		return nil, err
	}
	alpha := a.Config.LoraAlpha
	b := NewBuilder(arch)
	b.Set("general.type", "adapter")
	b.Set("general.name", name)
	b.Set(WrittenByKey, WrittenBy)
	b.Set("general.file_type", uint32(ftype))
	b.Set("general.quantization_version", uint32(QuantizationVersion))
	b.Set("adapter.type", "lora")
	b.Set("adapter.lora.alpha", float32(alpha))
	mods := a.Modules()
	hfNames := make([]string, len(mods))
	for i, mod := range mods {
		hfNames[i] = mod + ".weight"
	}
	for _, hf := range orderedNames(hfNames) {
		mod := strings.TrimSuffix(hf, ".weight")
		if mod == "lm_head" && c.TieEmbeddings {
			return nil, fmt.Errorf("gguf: adapter %q targets lm_head, which is tied to the embeddings; llama.cpp has no output.weight to apply it to", a.Name)
		}
		gname, err := TensorNameFor(arch, hf)
		if err != nil {
			return nil, err
		}
		ly := a.Layers[mod]
		r, in, out := ly.A.Value.Dim(0), ly.A.Value.Dim(1), ly.B.Value.Dim(0)
		if ly.B.Value.Dim(1) != r {
			return nil, fmt.Errorf("gguf: %s: lora_A is %v and lora_B %v; their ranks differ", mod, ly.A.Value.Shape(), ly.B.Value.Shape())
		}
		heads := 0
		if permute {
			switch {
			case strings.HasSuffix(mod, ".q_proj"):
				heads = c.NumHeads
			case strings.HasSuffix(mod, ".k_proj"):
				heads = c.NumKVHeads
			}
		}
		// Each matrix is read from the adapter when Write reaches it.
		read := func(part string, p *autograd.Var) ([]float32, error) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("gguf: stopped before %s: %w", lora.WeightName(mod, part), err)
			}
			var v []float32
			if err := tensor.Catch(func() { v = p.Value.F32() }); err != nil {
				return nil, fmt.Errorf("gguf: %s: %w", mod, err)
			}
			return v, nil
		}
		err = b.AddTensorFunc(gname+".lora_a", []int{r, in}, typeFor([]int{r, in}, wtype), func() ([]float32, error) {
			return read(lora.PartA, ly.A)
		})
		if err != nil {
			return nil, err
		}
		err = b.AddTensorFunc(gname+".lora_b", []int{out, r}, typeFor([]int{out, r}, wtype), func() ([]float32, error) {
			bv, err := read(lora.PartB, ly.B)
			if err != nil {
				return nil, err
			}
			// llama.cpp applies alpha/r; PEFT applied ly.Scale.
			if fold := ly.Scale / (alpha / float64(r)); fold != 1 {
				for i := range bv {
					bv[i] = float32(float64(bv[i]) * fold)
				}
			}
			if heads > 0 {
				if bv, err = PermuteQK(bv, heads, r); err != nil {
					return nil, fmt.Errorf("gguf: %s lora_B: %w", mod, err)
				}
			}
			return bv, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}
