package recipe

import (
	"runtime"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestMemoryPoolDropCollected: when the CPU pool's last holder lets go of
// many free buffers (a training's step buffers at the end of Fit), they
// are collected then, not left to a collector whose goal was set while
// they were live: the evaluation after training would otherwise grow the
// heap into new pages beside them (about 30 MiB of a tiny-base run's peak
// RSS, TestMemoryEstimateMatchesPeak).
func TestMemoryPoolDropCollected(t *testing.T) {
	const n, each = 16, 1 << 20 // 16 buffers of 4 MiB
	runtime.GC()
	done := tensor.UseCPUPool()
	end := tensor.ServeFromCPUPool()
	var ts []*tensor.Tensor
	for range n {
		ts = append(ts, tensor.New(tensor.CPUDefault(), tensor.F32, each))
	}
	for _, x := range ts {
		if err := tensor.Release(x); err != nil {
			t.Fatal(err)
		}
	}
	end()
	ts = nil
	var held, after runtime.MemStats
	runtime.ReadMemStats(&held)
	done()
	runtime.ReadMemStats(&after)
	pooled := uint64(n * each * 4)
	if after.HeapAlloc+pooled/2 > held.HeapAlloc {
		t.Fatalf("the pool dropped %d MiB of buffers and the heap still holds them: %d MiB allocated before, %d after", pooled>>20, held.HeapAlloc>>20, after.HeapAlloc>>20)
	}
}
