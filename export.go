package ftune

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/tensor"
)

// Export formats.
const (
	FormatPEFT     = "peft"      // adapter_config.json + adapter_model.safetensors
	FormatMerged   = "merged"    // the base with the adapter merged in, as a Hugging Face folder
	FormatGGUF     = "gguf"      // the merged model as one GGUF file (llama.cpp)
	FormatGGUFLoRA = "gguf-lora" // the adapter alone as a GGUF LoRA (llama.cpp --lora)
)

// ExportOptions control Export.
type ExportOptions struct {
	Format string // FormatPEFT, FormatMerged, FormatGGUF or FormatGGUFLoRA
	// Quant is the GGUF tensor type: f32, f16 (""), bf16, q8_0, or
	// llama-quantize's mixes q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m,
	// q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl and iq4_xs (a
	// GGUF LoRA takes f32, f16, bf16, q8_0 or q4_0, every tensor in it).
	// The GGUF formats' alone: peft and merged refuse it.
	Quant string
	// Imatrix is an importance matrix file (llama.cpp's GGUF or legacy
	// .dat format: Model.ImportanceMatrix, llama-imatrix) that weighs the
	// quantization of a GGUF export in one of llama-quantize's mixes, as
	// llama-quantize --imatrix does; "" quantizes without one. Other
	// formats and types refuse it.
	Imatrix string
	// OutputType and EmbeddingType are the tensor types (f32, f16, bf16,
	// q8_0, q4_0, q5_0, q5_1, q2_k … q6_k, iq4_nl, iq4_xs) of a GGUF
	// export's LM head and embeddings, in place of what Quant gives them
	// (llama-quantize's --output-tensor-type and --token-embedding-type;
	// "" keeps Quant's choice). Tied embeddings are the head: OutputType
	// applies to them unless EmbeddingType is set.
	OutputType, EmbeddingType string
	// MaxShardBytes splits a merged export into shards (<= 0: one file);
	// the other formats, which write one file, refuse it.
	MaxShardBytes int64
	// Force lets an export replace what ftune did not write: a merged or
	// PEFT export's folder holding other files, a GGUF export's existing
	// file other than an earlier GGUF of the same kind (model or LoRA)
	// that ftune wrote.
	// It is moved aside and kept, never deleted. A merged or PEFT folder
	// of the other format, one whose files changed since ftune wrote
	// them (its ftune_export.json records their SHA-256), or one whose
	// record an older ftune wrote without hashes (which proves nothing),
	// counts as not ftune's too.
	Force bool
	// From is what the export is made from (the adapter folder as the
	// user named it): a merged or PEFT export records it in
	// ftune_export.json, and a later export that replaces the folder
	// names it.
	From string
}

// ErrNoAdapter is wrapped by Export's error for a format that needs an
// adapter when the model has none.
var ErrNoAdapter = errors.New("this format needs an adapter")

// Export writes the model (with its adapter) to out, a folder (peft,
// merged) or a file (gguf, gguf-lora). It returns notes the user should
// read (an NF4 base dequantized, a folder moved aside). The weights are
// merged and encoded one tensor at a time as they are written, so an
// export needs little memory beyond the model's. A NaN or Inf anywhere
// (export.ErrNonFinite), a value the file's type cannot hold (beyond
// f16's ±65504, or an f16 block scale: export.ErrOutOfRange), or a
// cancelled ctx (between two tensors), stops it and leaves out as it was.
// A format or option refused before any work (an unknown format or
// tensor type, an option the format has no use for, a merged or gguf
// export of a model loaded in bf16, whose base weights are rounded)
// matches ErrInvalidInput.
func (m *Model) Export(ctx context.Context, out string, opt ExportOptions) (notes []string, err error) {
	if err := m.ready("export"); err != nil {
		return nil, err
	}
	if err := checkCtx("export", ctx); err != nil {
		return nil, err
	}
	if out == "" {
		return nil, invalid(errors.New("export: no output path"))
	}
	// "dir/" is the folder dir: every format works beside the path (its
	// temporaries, the cleanup of killed exports' ones), never inside it.
	out = filepath.Clean(out)
	switch opt.Format {
	case FormatPEFT, FormatMerged, FormatGGUF, FormatGGUFLoRA:
	default:
		return nil, invalidf("export: format %q: want peft, merged, gguf or gguf-lora", opt.Format)
	}
	if m.Adapter == nil && opt.Format != FormatGGUF {
		return nil, fmt.Errorf("export: format %s: %w", opt.Format, ErrNoAdapter)
	}
	quant := opt.Quant
	if quant == "" {
		quant = "f16"
	}
	// An option the format has no use for is refused, not dropped: a
	// --quant q4_k_m that wrote a bf16 folder would look like it worked.
	switch {
	case opt.Quant != "" && opt.Format == FormatPEFT:
		return nil, invalidf("export: format peft: a tensor type (quant %s) is a GGUF file's (format gguf or gguf-lora); a PEFT folder holds the adapter as it was trained", opt.Quant)
	case opt.Quant != "" && opt.Format == FormatMerged:
		return nil, invalidf("export: format merged: a tensor type (quant %s) is a GGUF file's (format gguf or gguf-lora); a merged folder keeps the base's dtype", opt.Quant)
	case opt.MaxShardBytes > 0 && opt.Format != FormatMerged:
		return nil, invalidf("export: format %s: a shard size (MaxShardBytes; the command's --max-shard-mb) is for a merged folder (format merged); %s writes one file", opt.Format, opt.Format)
	}
	// A ctx cancelled already stops every format here, before anything is
	// touched (not even the leftovers of killed exports that the writers
	// clear); the writers check it again before each tensor.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if opt.Imatrix != "" && opt.Format != FormatGGUF {
		return nil, invalidf("export: format %s: an importance matrix weighs a quantized GGUF model (format gguf with one of llama-quantize's mixes as its quant); %s has nothing it could weigh", opt.Format, opt.Format)
	}
	if (opt.OutputType != "" || opt.EmbeddingType != "") && opt.Format != FormatGGUF {
		return nil, invalidf("export: format %s: the output and embedding types are a GGUF model's (format gguf); %s holds no such tensors to type", opt.Format, opt.Format)
	}
	if m.Net.DType == tensor.BF16 && (opt.Format == FormatMerged || opt.Format == FormatGGUF) {
		// The base is written from the weights in memory: bf16 (a GPU's
		// precision bf16, LoadOptions) would have rounded a float32 or
		// float16 base's. The adapter formats read only the adapter,
		// which stays float32.
		return nil, invalidf("export: format %s: the model was loaded in bf16 (precision bf16 on a GPU), which rounds a float32 or float16 base's weights; load it on the CPU (LoadOptions.Device \"\" or \"cpu\") or at precision f32 to export it", opt.Format)
	}
	switch opt.Format {
	case FormatPEFT:
		return export.PEFTWith(ctx, m.Adapter, out, export.PEFTOptions{Force: opt.Force, ChatTemplate: m.Template.Source(), From: opt.From})
	case FormatMerged:
		// The adapter is attached for generation; the merge reads it
		// separately and leaves the model as it is.
		res, err := export.MergedHFWith(ctx, m.Net, m.Adapter, m.Dir, out, export.MergedOptions{MaxShardBytes: opt.MaxShardBytes, Force: opt.Force, ChatTemplate: m.Template.Source(), From: opt.From})
		if err != nil {
			return nil, err
		}
		return res.Notes, nil
	case FormatGGUF, FormatGGUFLoRA:
		ft, err := gguf.ParseFileType(quant)
		if err != nil {
			return nil, invalid(err)
		}
		gopt := gguf.Options{Name: filepath.Base(m.Dir), ChatTemplate: m.Template.Source(), FileType: ft, Adapter: m.Adapter}
		if opt.Imatrix != "" {
			if gopt.Importance, err = gguf.ReadImatrix(opt.Imatrix); err != nil {
				return nil, err
			}
		}
		for _, o := range []struct {
			name string
			to   **gguf.TensorType
		}{{opt.OutputType, &gopt.OutputType}, {opt.EmbeddingType, &gopt.EmbeddingType}} {
			if o.name == "" {
				continue
			}
			t, err := gguf.ParseTensorType(o.name)
			if err != nil {
				return nil, invalidf("export: %w", err)
			}
			*o.to = &t
		}
		kind := gguf.KindModel
		if opt.Format == FormatGGUFLoRA {
			kind = gguf.KindAdapter
		}
		kept, fileNotes, err := export.ReplaceFile(out, opt.Force, export.FileRule{Ours: gguf.Replaceable(kind), Describe: gguf.Describe}, func() error {
			if opt.Format == FormatGGUFLoRA {
				return gguf.WriteLoRAContext(ctx, out, m.Net, m.Adapter, ft)
			}
			return gguf.WriteModelWith(ctx, out, m.Net, m.Tokenizer, gopt)
		})
		if err != nil {
			return nil, err
		}
		notes = append(fileNotes, gguf.Notes(m.Net.Config)...)
		if opt.Format == FormatGGUFLoRA {
			typeNotes, err := gguf.LoRATypeNotes(m.Net, m.Adapter, ft)
			if err != nil {
				return nil, err
			}
			notes = append(notes, typeNotes...)
		}
		if opt.Format == FormatGGUF {
			typeNotes, err := gguf.TypeNotes(m.Net, gopt)
			if err != nil {
				return nil, err
			}
			notes = append(notes, typeNotes...)
			if gopt.Importance != nil {
				imNotes, err := gguf.ImportanceNotes(m.Net, gopt)
				if err != nil {
					return nil, err
				}
				notes = append(notes, imNotes...)
			}
		}
		if kept != "" {
			notes = append(notes, fmt.Sprintf("--force: the file that was at %s (not an earlier export of this kind) is kept at %s", out, kept))
		}
		return notes, nil
	}
	return nil, invalidf("export: format %q: want peft, merged, gguf or gguf-lora", opt.Format)
}
