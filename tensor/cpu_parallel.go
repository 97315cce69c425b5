package tensor

import (
	"runtime"
	"sync"
)

// parallelMinWork is the least work (elements touched) that is split over
// goroutines: starting one costs about a microsecond, and an elementwise
// pass over 32k floats takes tens of microseconds, so below this the split
// only adds overhead.
const parallelMinWork = 1 << 15

// parallelRange runs fn over [0,n) cut into up to GOMAXPROCS contiguous
// parts of about equal size, concurrently, when n·cost (cost: elements
// touched per index) reaches parallelMinWork; otherwise fn(0, n) runs on
// the caller's goroutine. Parts never overlap, so fn may write its part of
// an output without synchronisation; part (0-based, < parts) lets fn use a
// private scratch buffer per part.
func parallelRange(n, cost int, fn func(part, lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n)
	if parts <= 1 || n*cost < parallelMinWork {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(p, p*n/parts, (p+1)*n/parts)
		}()
	}
	fn(0, 0, n/parts)
	wg.Wait()
}

// parallelParts is the number of parts parallelRange(n, cost, …) uses.
func parallelParts(n, cost int) int {
	parts := min(runtime.GOMAXPROCS(0), n)
	if parts <= 1 || n*cost < parallelMinWork {
		return 1
	}
	return parts
}
