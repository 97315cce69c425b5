package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/export/gguf"
	"github.com/ftune/ftune/lora"
)

func newExportCmd() *cobra.Command {
	var (
		modelName, adapter, format, out, quant string
		shardMB                                int64
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export an adapter: PEFT folder, merged Hugging Face folder, GGUF model or GGUF LoRA",
		Long: `Export a trained adapter in the format people deploy:

  peft       adapter_config.json + adapter_model.safetensors (PEFT loads it)
  merged     the base with the adapter merged in, as a Hugging Face folder
             in the base's dtype (transformers loads it)
  gguf       the merged model as one GGUF file (llama.cpp loads it);
             --quant f32, f16, bf16, q8_0 or q4_0
  gguf-lora  the adapter alone as a GGUF LoRA (llama.cpp --lora)`,
		Example: `  ftune export --adapter runs/x/adapter --format merged --out merged-model
  ftune export --adapter runs/x/adapter --format gguf --quant q8_0 --out model-q8.gguf
  ftune export --adapter runs/x/adapter --format gguf-lora --out adapter.gguf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			l, err := loadModel(modelName)
			if err != nil {
				return err
			}
			var a *lora.Adapter
			if adapter != "" {
				if a, err = lora.Load(l.model, adapter, "default"); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			needAdapter := func() error {
				if a == nil {
					return usageError{fmt.Errorf("--format %s needs --adapter", format)}
				}
				return nil
			}
			switch format {
			case "peft":
				if err := needAdapter(); err != nil {
					return err
				}
				a.Config.BaseModelNameOrPath = l.dir
				if err := a.Save(out); err != nil {
					return err
				}
			case "merged":
				if err := needAdapter(); err != nil {
					return err
				}
				res, err := export.MergedHFResult(l.model, a, l.dir, out, shardMB<<20)
				if err != nil {
					return err
				}
				for _, n := range res.Notes {
					fmt.Fprintln(w, "note:", n)
				}
			case "gguf":
				ft, err := gguf.ParseFileType(quant)
				if err != nil {
					return err
				}
				opt := gguf.Options{Name: filepath.Base(l.dir), ChatTemplate: l.template.Source(), FileType: ft, Adapter: a}
				if err := gguf.WriteModelWith(out, l.model, l.tok, opt); err != nil {
					return err
				}
			case "gguf-lora":
				if err := needAdapter(); err != nil {
					return err
				}
				ft, err := gguf.ParseFileType(quant)
				if err != nil {
					return err
				}
				if err := gguf.WriteLoRA(out, l.model, a, ft); err != nil {
					return err
				}
			default:
				return usageError{fmt.Errorf("--format %q: want peft, merged, gguf or gguf-lora", format)}
			}
			fmt.Fprintf(w, "wrote %s (%s)\n", out, format)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "tiny-base", "base model the adapter was trained on")
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder")
	f.StringVar(&format, "format", "merged", "peft, merged, gguf or gguf-lora")
	f.StringVar(&out, "out", "", "output folder (peft, merged) or file (gguf, gguf-lora)")
	f.StringVar(&quant, "quant", "f16", "GGUF tensor type: f32, f16, bf16, q8_0, q4_0")
	f.Int64Var(&shardMB, "max-shard-mb", 5000, "merged: shard size limit in MB")
	return cmd
}
