// Command stepmem prints what one LoRA training step holds (live bytes
// when the backward begins, and the step's peak), counted tensor by tensor
// as a GPU's allocator would hold them (bench.MeasureStepMemory), as one
// JSON line:
//
//	go run ./internal/cmd/stepmem -shape smollm2-135m -batch 1 -seq 2048
//	go run ./internal/cmd/stepmem -shape llama-3-8b -layers 3 -batch 1 -seq 2048 -checkpoint -offload -mlp-chunk 256
//
// The counts scale with the tokens of a micro-batch (flash attention and
// the chunked loss hold nothing quadratic), so a step of B×T on a GPU
// holds about B times a 1×T one.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ftune/ftune/bench"
)

func main() {
	shape := flag.String("shape", "tiny-base", "tiny-base, smollm2-135m, or a GPU shape (llama-3.2-1b, llama-3-8b) with random weights")
	batch := flag.Int("batch", 0, "sequences per micro-batch (0: the shape's)")
	seq := flag.Int("seq", 0, "tokens per sequence (0: the shape's)")
	model := flag.String("model", "", "model folder (default: assets/models/tiny-base, or random weights cached under -cache)")
	cache := flag.String("cache", os.TempDir(), "where the random-weight model folder is kept")
	ckpt := flag.Bool("checkpoint", false, "gradient checkpointing per decoder block")
	offload := flag.Bool("offload", false, "with -checkpoint: the saved block inputs in host memory (training.offload_checkpoints)")
	mlpChunk := flag.Int("mlp-chunk", 0, "the MLP over chunks of this many tokens (training.mlp_chunk_tokens; 0: whole)")
	layers := flag.Int("layers", 0, "decoder blocks of the random-weight model (0: the shape's); what a step holds per token barely depends on it once the block inputs are offloaded")
	flag.Parse()
	if *offload && !*ckpt {
		fmt.Fprintln(os.Stderr, "stepmem: -offload moves -checkpoint's saved block inputs; add -checkpoint")
		os.Exit(2)
	}
	if *mlpChunk < 0 {
		fmt.Fprintln(os.Stderr, "stepmem: -mlp-chunk must be ≥ 0")
		os.Exit(2)
	}
	mem := bench.MemorySavers{Checkpoint: *ckpt, Offload: *offload, MLPChunkTokens: *mlpChunk}
	if err := run(*shape, *batch, *seq, *layers, *model, *cache, mem); err != nil {
		fmt.Fprintln(os.Stderr, "stepmem:", err)
		os.Exit(1)
	}
}

func run(shape string, batch, seq, layers int, model, cache string, mem bench.MemorySavers) error {
	s, ok := bench.Shapes[shape]
	if !ok {
		if s, ok = bench.GPUShapes[shape]; !ok {
			return fmt.Errorf("unknown shape %q (tiny-base, smollm2-135m, llama-3.2-1b or llama-3-8b)", shape)
		}
	}
	if layers < 0 || (layers > 0 && (model != "" || shape == "tiny-base")) {
		return fmt.Errorf("-layers %d: want ≥ 1, for a random-weight shape (not -model, not tiny-base)", layers)
	}
	if layers > 0 {
		s.Layers = layers
		s.Name = fmt.Sprintf("%s-%dl", s.Name, layers) // its own cached folder
	}
	if batch == 0 {
		batch = s.Batch
	}
	if seq == 0 {
		seq = s.Seq
	}
	if model == "" {
		if shape == "tiny-base" {
			model = "assets/models/tiny-base"
		} else {
			dir, err := bench.RandomModelDir(cache, s)
			if err != nil {
				return err
			}
			model = dir
		}
	}
	res, err := bench.MeasureStepMemory(s.Name, model, batch, seq, mem)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
