package recipe

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/train/commtest"
)

// TestDataLoadsInTurnWithATokenCache: with a token cache, the first worker
// of each machine loads (tokenizes into the cache) before any other worker
// starts loading, and the others then load (reading the cache); without
// one, every worker loads at once. Hosts are gatherRanks' descriptions.
func TestDataLoadsInTurnWithATokenCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts []string
		cache bool
		first []int // the ranks that load before the others
	}{
		{"one machine", []string{"a cpu", "a cpu", "a cpu"}, true, []int{0}},
		{"two machines", []string{"a cuda:0", "b cuda:0", "a cuda:1", "b cuda:1"}, true, []int{0, 1}},
		{"no token cache", []string{"a cpu", "a cpu"}, false, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			started, ended := map[int]time.Time{}, map[int]time.Time{}
			n := len(tc.hosts)
			allStarted := make(chan struct{})
			var startedCount sync.WaitGroup
			startedCount.Add(n)
			go func() { startedCount.Wait(); close(allStarted) }()
			errs := commtest.Run(n, func(c dist.Comm) error {
				s := &session{o: Options{Comm: c}, log: io.Discard, ranks: tc.hosts}
				if tc.cache {
					s.o.TokenCache = t.TempDir()
				}
				return s.loadDataInTurn(func() error {
					r := c.Rank()
					mu.Lock()
					started[r] = time.Now()
					mu.Unlock()
					if !tc.cache {
						// Without turns every worker is loading at the
						// same time: this one waits for all of them.
						startedCount.Done()
						select {
						case <-allStarted:
						case <-time.After(30 * time.Second):
							return fmt.Errorf("rank %d: the other workers did not start loading", r)
						}
					} else {
						time.Sleep(50 * time.Millisecond)
					}
					mu.Lock()
					ended[r] = time.Now()
					mu.Unlock()
					return nil
				})
			})
			for r, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", r, err)
				}
			}
			if len(started) != n {
				t.Fatalf("%d of %d workers loaded", len(started), n)
			}
			if !tc.cache {
				return
			}
			for r := range n {
				if slices.Contains(tc.first, r) {
					continue
				}
				for _, f := range tc.first {
					if !started[r].After(ended[f]) {
						t.Errorf("rank %d started loading before rank %d (the first worker of a machine) had finished", r, f)
					}
				}
			}
		})
	}
}

// TestDataParallelTokenCache: two in-process workers sharing a token cache
// train as one process does; rank 0 fills the cache, rank 1 reads it.
func TestDataParallelTokenCache(t *testing.T) {
	o := dpOptions(t, "cache")
	o.TokenCache = t.TempDir()
	one := o
	one.TokenCache, one.OutDir = "", t.TempDir()
	single, err := Run(context.Background(), one)
	if err != nil {
		t.Fatal(err)
	}
	compareRuns(t, single, runWorkers(t, o, 2))
	files, _ := filepath.Glob(filepath.Join(o.TokenCache, "chemistry", "*.tokens"))
	if len(files) == 0 {
		t.Errorf("no token cache written under %s", o.TokenCache)
	}
}
