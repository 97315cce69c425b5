package recipe

import (
	"context"
	"runtime"
	"testing"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

// TestMemoryValidationHeapPerBatch: a validation batch on the CPU leaves
// the Go heap far less than its logits. Each batch used to read its logits
// back through a fresh float32 copy (train.tokenStats), a batch's logits
// of garbage a batch that the CPU pool does not recycle: at GOGC 100 a
// run's 29-batch validations piled up about 70 MiB of it on tiny-base
// before a collection, and the run's peak RSS rose from 188 MiB (2
// validation batches) to 265 (all 29), over the plan's 191.
func TestMemoryValidationHeapPerBatch(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir, err := assets.Model(assets.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const B, T, batches = 4, 128, 10
	var rows []prep.Row
	for i := range B * batches {
		r := prep.Row{Docs: 1, Subject: 0}
		for j := range T {
			r.InputIDs = append(r.InputIDs, int32(4+(i*T+j)*7%4000))
			r.Learnt = append(r.Learnt, j > 0)
		}
		rows = append(rows, r)
	}
	heap := func(n int) uint64 {
		l, err := train.NewRowLoader(rows, []string{"s"}, B, false, 0, 0, m.Backend)
		if err != nil {
			t.Fatal(err)
		}
		tr := &train.Trainer{Model: m, Cfg: train.Config{ValMaxBatches: n}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := tr.Validate(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	heap(1) // the process's first forward: lazily made tables
	// The least of two tries each: TotalAlloc is the process's, and
	// anything another test left running only adds to it.
	few, many := min(heap(2), heap(2)), min(heap(batches), heap(batches))
	perBatch := (float64(many) - float64(few)) / (batches - 2)
	t.Logf("heap allocated by validations of 2 and %d batches: %s, %s", batches, gib(float64(few)), gib(float64(many)))
	logits := float64(B * T * m.Config.VocabSize * 4)
	t.Logf("heap allocated per validation batch: %s (its logits: %s)", gib(perBatch), gib(logits))
	if perBatch > logits/2 {
		t.Fatalf("each validation batch allocates %s on the heap, over half its logits (%s): something the CPU pool does not recycle is made per batch", gib(perBatch), gib(logits))
	}
}
