package recipe

import (
	"fmt"
	"io"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/train"
)

// freeBytes is fsutil.FreeBytes (tests give a full disk).
var freeBytes = fsutil.FreeBytes

// DiskPlan is what a run writes into its folder that grows with the
// trained parameters: checkpoints and the adapters at the end.
type DiskPlan struct {
	Checkpoint float64 // one checkpoint: parameters, optimizer moments, the adapter files
	AtOnce     int     // checkpoints on disk at once at most (one more while a new one is written)
	Adapters   float64 // the adapter folders written at the end
	Need       float64 // AtOnce × Checkpoint + Adapters
	Free       float64 // the file system's free space; 0: unknown
	Dir        string
}

// diskPlan sizes a run's checkpoints from its trainable parameters
// (float32 files): each holds the parameters, the optimizer's moments
// (AdamW two, SGD one) and the PEFT adapter files, which hold the
// parameters again. Checkpoints kept: the newest keep_last and the best
// top_k, bounded by how many the run writes, and one more while a new
// one is written before the oldest is pruned.
func (o *Options) diskPlan(t *train.Trainer, dir string) DiskPlan {
	var params float64
	for _, p := range t.Params {
		params += 4 * float64(p.Value.Shape().Numel())
	}
	moments := 2.0
	if o.Optimizer == "sgd" {
		moments = 1
	}
	written := 1 // at the end
	if o.CheckpointEvery > 0 {
		written += t.TotalSteps() / o.CheckpointEvery
	}
	kept := o.KeepLast
	if o.Monitor != "" && o.TopK > 0 {
		kept += o.TopK
	}
	if kept <= 0 || kept > written {
		kept = written
	}
	p := DiskPlan{Checkpoint: params * (1 + moments + 1), AtOnce: min(kept+1, written), Adapters: params, Dir: dir}
	p.Need = float64(p.AtOnce)*p.Checkpoint + p.Adapters
	if free, ok := freeBytes(dir); ok {
		p.Free = float64(free)
	}
	return p
}

// String is the line a run prints before training.
func (p DiskPlan) String() string {
	s := fmt.Sprintf("disk: checkpoints ≈ %s each, up to %d at once, adapters %s: ≈ %s", gib(p.Checkpoint), p.AtOnce, gib(p.Adapters), gib(p.Need))
	if p.Free > 0 {
		return s + fmt.Sprintf("; %s free in %s", gib(p.Free), p.Dir)
	}
	return s + "; free space unknown"
}

// printDiskPlan prints the plan, and a warning when the run folder's file
// system has less free than it needs: the run would fail at a checkpoint,
// possibly hours in. Not refused: space may be freed meanwhile, and a
// failed checkpoint loses nothing saved before it.
func (o *Options) printDiskPlan(log io.Writer, t *train.Trainer, dir string) {
	p := o.diskPlan(t, dir)
	fmt.Fprintln(log, p)
	if p.Free > 0 && p.Need > p.Free {
		fmt.Fprintf(log, "warning: the run's checkpoints and adapters need about %s and %s has %s free: a checkpoint will fail once it fills up; free space, keep fewer checkpoints (training.checkpointing.keep_last %d, top_k %d) or write the run elsewhere (training.tracking.output_dir)\n",
			gib(p.Need), p.Dir, gib(p.Free), o.KeepLast, o.TopK)
	}
}
