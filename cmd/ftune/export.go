package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/export/gguf"
)

// maxShardMB is the largest --max-shard-mb, 1 TiB: far above any shard a
// loader wants, and far below the 2^43 MiB at which the size in bytes
// (shardMB << 20) overflows into a small or negative limit.
const maxShardMB = 1 << 20

func newExportCmd() *cobra.Command {
	var (
		modelName, adapter, out string
		opt                     ftune.ExportOptions
		shardMB                 int64
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export an adapter: PEFT folder, merged Hugging Face folder, GGUF model or GGUF LoRA",
		Long: `Export a trained adapter in the format people deploy:

  peft       adapter_config.json + adapter_model.safetensors (PEFT loads it)
  merged     the base with the adapter merged in, as a Hugging Face folder
             in the base's dtype (transformers loads it)
  gguf       the merged model as one GGUF file (llama.cpp loads it);
             --quant f32, f16, bf16, q8_0, or llama-quantize's mixes
             q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l,
             q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl and iq4_xs;
             --imatrix weighs the mixes by an importance matrix (ftune
             imatrix, llama-imatrix), as llama-quantize --imatrix does
  gguf-lora  the adapter alone as a GGUF LoRA (llama.cpp --lora)

The adapter is applied to the base it was trained on (recorded in the
adapter folder); --model points at that base when it moved, and a model
with other weights is refused. Weights holding NaN or Inf are refused, and
so are weights beyond the range of the type written (f16's ±65504, or a
block scale f16 cannot store): --quant bf16 or f32 has the range.
--quant is for gguf and gguf-lora, --max-shard-mb for merged, --imatrix
and the tensor type flags for gguf: another format refuses them.
A merged or PEFT export replaces only an earlier export of the same format
whose files are as it wrote them (ftune_export.json records each one's
SHA-256), and a GGUF export only a GGUF file of the same kind (model, or
LoRA) that ftune wrote; either says what it replaced. A folder holding
other files (a training run's adapter folder included), an export of the
other format, one with a file edited since, one whose record an older
ftune wrote without hashes (which proves nothing), or any other file (an
importance matrix included), is refused, or with --force moved aside
(kept, not deleted). What a killed export of the same --out left beside
it (.OUT.tmp-DIGITS) is removed by the next export to that --out, and
said; what is at other outputs' temporary names is only named (with its
size), never removed.

The path written is printed on stdout; notes (what was replaced, moved
aside or removed, what loading the model said) go to stderr.`,
		Example: `  ftune export --adapter runs/x/adapter --format merged --out merged-model
  ftune export --adapter runs/x/adapter --format gguf --quant q8_0 --out model-q8.gguf
  ftune export --adapter runs/x/adapter --format gguf --quant q4_k_m --out model-q4_k_m.gguf
  ftune export --adapter runs/x/adapter --format gguf --quant q3_k_m --imatrix imatrix.gguf --out model-q3_k_m.gguf
  ftune export --adapter runs/x/adapter --format gguf --quant q4_k_m --output-tensor-type q8_0 --token-embedding-type q8_0 --out m.gguf
  ftune export --adapter runs/x/adapter --format gguf-lora --out adapter.gguf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			// "dir/" is the folder dir: its temporaries go beside it, not
			// into it (where the cleanup of killed exports would look).
			out = filepath.Clean(out)
			// Formats are names, as --quant's types are: any case.
			opt.Format = strings.ToLower(opt.Format)
			switch opt.Format {
			case ftune.FormatPEFT, ftune.FormatMerged, ftune.FormatGGUFLoRA:
				if adapter == "" {
					return usageError{fmt.Errorf("--format %s needs --adapter", opt.Format)}
				}
			case ftune.FormatGGUF:
			default:
				return usageError{fmt.Errorf("--format %q: want peft, merged, gguf or gguf-lora", opt.Format)}
			}
			// A flag the format has no use for is refused, not dropped
			// (--quant q4_k_m with the default --format merged would
			// otherwise write a bf16 folder); Changed, since --quant and
			// --max-shard-mb have defaults.
			changed := cmd.Flags().Changed
			if opt.Format != ftune.FormatGGUF {
				for _, f := range []string{"imatrix", "output-tensor-type", "token-embedding-type"} {
					if changed(f) {
						return usageError{fmt.Errorf("--%s is for --format gguf (a quantized model file), not %s", f, opt.Format)}
					}
				}
			}
			switch {
			case changed("quant") && (opt.Format == ftune.FormatMerged || opt.Format == ftune.FormatPEFT):
				return usageError{fmt.Errorf("--quant is for --format gguf or gguf-lora (a GGUF file), not %s, which keeps the weights' own dtype", opt.Format)}
			case changed("max-shard-mb") && opt.Format != ftune.FormatMerged:
				return usageError{fmt.Errorf("--max-shard-mb is for --format merged (a sharded folder), not %s, which writes no shards", opt.Format)}
			case shardMB < 1:
				return usageError{fmt.Errorf("--max-shard-mb %d: want at least 1", shardMB)}
			case shardMB > maxShardMB:
				return usageError{fmt.Errorf("--max-shard-mb %d: want at most %d (1 TiB)", shardMB, maxShardMB)}
			}
			// The types are names the export would refuse after loading
			// the model (minutes): refused here, as the usage they are.
			if opt.Format == ftune.FormatGGUF || opt.Format == ftune.FormatGGUFLoRA {
				ft, err := gguf.ParseFileType(opt.Quant)
				if err == nil && opt.Format == ftune.FormatGGUFLoRA {
					err = gguf.CheckLoRAType(ft)
				}
				if err != nil {
					return usageError{fmt.Errorf("--quant %s: %w", opt.Quant, err)}
				}
			}
			for _, t := range []struct{ flag, name string }{{"output-tensor-type", opt.OutputType}, {"token-embedding-type", opt.EmbeddingType}} {
				if _, err := gguf.ParseTensorType(t.name); t.name != "" && err != nil {
					return usageError{fmt.Errorf("--%s %s: %w", t.flag, t.name, err)}
				}
			}
			if !changed("quant") {
				opt.Quant = "" // each format's default (f16 for GGUF)
			}
			// On the CPU at float32: a merge and its encoding read each
			// weight once, work a GPU would not speed up, and a GPU's bf16
			// load would round a float32 base's weights before they are
			// written.
			m, err := loadModel(cmd, modelName, adapter, deviceFlags{})
			if err != nil {
				return err
			}
			if opt.Format == ftune.FormatMerged {
				opt.MaxShardBytes = shardMB << 20
			}
			opt.From = adapter // recorded, and named when a later export replaces this one
			notes, err := m.Export(cmd.Context(), out, opt)
			if err != nil {
				return err
			}
			// What was replaced or moved aside is a note, on stderr with
			// the model's loading notes; what was written is the result,
			// on stdout, for a script to read.
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s of %s)\n", out, opt.Format, m.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder")
	f.StringVar(&opt.Format, "format", "merged", "peft, merged, gguf or gguf-lora (any case)")
	f.StringVar(&out, "out", "", "output folder (peft, merged) or file (gguf, gguf-lora)")
	f.StringVar(&opt.Quant, "quant", "f16", "gguf, gguf-lora: tensor type: f32, f16, bf16, q8_0, or llama-quantize's mixes q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m, q6_k, iq4_nl, iq4_xs (gguf-lora: f32, f16, bf16, q8_0, q4_0)")
	f.StringVar(&opt.Imatrix, "imatrix", "", "gguf mixes: importance matrix file (ftune imatrix or llama-imatrix; GGUF or legacy .dat)")
	f.StringVar(&opt.OutputType, "output-tensor-type", "", "gguf: the LM head's tensor type (e.g. q8_0), in place of --quant's; tied embeddings too (llama-quantize's flag)")
	f.StringVar(&opt.EmbeddingType, "token-embedding-type", "", "gguf: the embeddings' tensor type (e.g. q8_0), in place of --quant's (llama-quantize's flag)")
	f.Int64Var(&shardMB, "max-shard-mb", 5000, "merged: shard size limit in MiB, 1 to 1048576 (1 TiB)")
	f.BoolVar(&opt.Force, "force", false, "replace an output that is no earlier export of this format (a folder holding other files, an export of the other format, or files edited since; for gguf and gguf-lora any file but an earlier one of the same kind): it is moved aside, not deleted")
	return cmd
}
