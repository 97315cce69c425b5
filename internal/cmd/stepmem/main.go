// Command stepmem prints what one LoRA training step holds (live bytes
// when the backward begins, and the step's peak), counted tensor by tensor
// as a GPU's allocator would hold them (bench.MeasureStepMemory), as one
// JSON line:
//
//	go run ./internal/cmd/stepmem -shape smollm2-135m -batch 1 -seq 2048
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
	shape := flag.String("shape", "tiny-base", "tiny-base or smollm2-135m")
	batch := flag.Int("batch", 0, "sequences per micro-batch (0: the shape's)")
	seq := flag.Int("seq", 0, "tokens per sequence (0: the shape's)")
	model := flag.String("model", "", "model folder (default: assets/models/tiny-base, or random weights cached under -cache)")
	cache := flag.String("cache", os.TempDir(), "where the random-weight model folder is kept")
	ckpt := flag.Bool("checkpoint", false, "gradient checkpointing per decoder block")
	offload := flag.Bool("offload", false, "with -checkpoint: the saved block inputs in host memory (training.offload_checkpoints)")
	flag.Parse()
	if *offload && !*ckpt {
		fmt.Fprintln(os.Stderr, "stepmem: -offload moves -checkpoint's saved block inputs; add -checkpoint")
		os.Exit(2)
	}
	if err := run(*shape, *batch, *seq, *model, *cache, *ckpt, *offload); err != nil {
		fmt.Fprintln(os.Stderr, "stepmem:", err)
		os.Exit(1)
	}
}

func run(shape string, batch, seq int, model, cache string, ckpt, offload bool) error {
	s, ok := bench.Shapes[shape]
	if !ok {
		return fmt.Errorf("unknown shape %q (tiny-base or smollm2-135m)", shape)
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
	res, err := bench.MeasureStepMemory(shape, model, batch, seq, ckpt, offload)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
