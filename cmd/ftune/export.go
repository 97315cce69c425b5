package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
)

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
             --quant f32, f16, bf16, q8_0, or llama-quantize's
             mixes q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m,
             q5_k_s, q5_k_m, q6_k, iq4_nl and iq4_xs; --imatrix weighs
             the mixes by an
             importance matrix (ftune imatrix, llama-imatrix), as
             llama-quantize --imatrix does
  gguf-lora  the adapter alone as a GGUF LoRA (llama.cpp --lora)

The adapter is applied to the base it was trained on (recorded in the
adapter folder); --model points at that base when it moved, and a model
with other weights is refused. Weights holding NaN or Inf are refused.
A merged or PEFT export replaces only a folder an earlier export wrote, and
a GGUF export only a GGUF file ftune wrote: a folder holding other files
(a training run's adapter folder included), or any other file, is refused,
or with --force moved aside (kept, not deleted).`,
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
			switch opt.Format {
			case ftune.FormatPEFT, ftune.FormatMerged, ftune.FormatGGUFLoRA:
				if adapter == "" {
					return usageError{fmt.Errorf("--format %s needs --adapter", opt.Format)}
				}
			case ftune.FormatGGUF:
			default:
				return usageError{fmt.Errorf("--format %q: want peft, merged, gguf or gguf-lora", opt.Format)}
			}
			if opt.Format != ftune.FormatGGUF {
				for _, f := range [][2]string{{"--imatrix", opt.Imatrix}, {"--output-tensor-type", opt.OutputType}, {"--token-embedding-type", opt.EmbeddingType}} {
					if f[1] != "" {
						return usageError{fmt.Errorf("%s is for --format gguf (a quantized model file), not %s", f[0], opt.Format)}
					}
				}
			}
			if shardMB < 1 {
				return usageError{fmt.Errorf("--max-shard-mb %d: want at least 1", shardMB)}
			}
			m, err := loadModel(cmd, modelName, adapter)
			if err != nil {
				return err
			}
			opt.MaxShardBytes = shardMB << 20
			notes, err := m.Export(cmd.Context(), out, opt)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, n := range notes {
				fmt.Fprintln(w, "note:", n)
			}
			fmt.Fprintf(w, "wrote %s (%s of %s)\n", out, opt.Format, m.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder")
	f.StringVar(&opt.Format, "format", "merged", "peft, merged, gguf or gguf-lora")
	f.StringVar(&out, "out", "", "output folder (peft, merged) or file (gguf, gguf-lora)")
	f.StringVar(&opt.Quant, "quant", "f16", "GGUF tensor type: f32, f16, bf16, q8_0, or llama-quantize's mixes q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m, q6_k, iq4_nl, iq4_xs (gguf-lora: f32, f16, bf16, q8_0, q4_0)")
	f.StringVar(&opt.Imatrix, "imatrix", "", "gguf mixes: importance matrix file (ftune imatrix or llama-imatrix; GGUF or legacy .dat)")
	f.StringVar(&opt.OutputType, "output-tensor-type", "", "gguf: the LM head's tensor type (e.g. q8_0), in place of --quant's; tied embeddings too (llama-quantize's flag)")
	f.StringVar(&opt.EmbeddingType, "token-embedding-type", "", "gguf: the embeddings' tensor type (e.g. q8_0), in place of --quant's (llama-quantize's flag)")
	f.Int64Var(&shardMB, "max-shard-mb", 5000, "merged: shard size limit in MB")
	f.BoolVar(&opt.Force, "force", false, "replace an output no ftune export wrote (a folder holding other files, an existing file for gguf): it is moved aside, not deleted")
	return cmd
}
