package prep_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// pick is exs at idx, in that order.
func pick(exs []format.Example, idx []int) []format.Example {
	out := make([]format.Example, len(idx))
	for k, i := range idx {
		out[k] = exs[i]
	}
	return out
}

// backwards is s reversed.
func backwards(s []int) []int {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// upTo is 0, 1, ..., n-1.
func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestSelectEqualsTokenizingTheSubset: the documents and Stats that Select
// takes out of the tokenisation of all examples, or out of the token
// cache written from it, are those of tokenising the subset alone: the
// training split and the held-out share of a run, drawn by index after
// tokenising the whole file, are what tokenising each split gave, bit for
// bit (truncated, dropped, over the positions and skipped examples
// included).
func TestSelectEqualsTokenizingTheSubset(t *testing.T) {
	tok, eos := tinyTokenizer(t)
	const maxLen = 64
	n, bad := 1200, 700
	exs := varied(n, bad, maxLen)
	base := prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, Tmpl: ctxRenderer(limitedTemplate(t)), EOS: eos}
	train, val := prep.SplitRatio(upTo(n), 0.1, 42)
	subsets := map[string][]int{"training split": train, "held-out share": val, "all": upTo(n), "none": nil, "backwards": backwards(upTo(n))}
	for _, tc := range []struct {
		name string
		opts prep.Options
		skip bool
	}{
		{"truncate, skips the bad example", prep.Options{MaxLen: maxLen, MaxPositions: 48}, true},
		{"drop", prep.Options{MaxLen: maxLen, Overflow: prep.Drop, MaxPositions: 60}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.Opts = tc.opts
			exs := exs
			if tc.skip {
				p.SkipBad = budgetError
			} else {
				exs = slices.Delete(slices.Clone(exs), bad, bad+1)
			}
			for _, workers := range []int{1, 3} {
				p.Workers = workers
				whole, err := p.TokenizeAllOutcomes(exs)
				if err != nil {
					t.Fatal(err)
				}
				if len(whole.Outcomes) != len(exs) || whole.Stats.Truncated+whole.Stats.Dropped == 0 || tc.opts.Overflow == prep.Truncate && whole.Stats.DroppedNoLabel == 0 || whole.Stats.OverPositions == 0 || tc.skip && whole.Stats.Skipped != 1 {
					t.Fatalf("%d outcomes for %d examples, stats %+v: want every outcome", len(whole.Outcomes), len(exs), whole.Stats)
				}
				whole.Keys = prep.ExampleKeys(exs)
				var cached prep.Tokenization
				if !tc.skip { // a cache holds no skipped example
					path := filepath.Join(t.TempDir(), "train.tokens")
					if err := prep.WriteTokenization(context.Background(), path, testCacheKey(), whole, nil); err != nil {
						t.Fatal(err)
					}
					c, err := prep.OpenCache(path, testCacheKey())
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					cached = prep.Tokenization{Docs: c.Docs(), Outcomes: c.Outcomes(), Keys: c.Keys()}
				}
				for name, idx := range subsets {
					if idx == nil && name != "none" {
						continue
					}
					// Without the bad example there is one example less.
					idx := slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return i >= len(exs) })
					q := p
					q.Workers = 1
					docs, st, err := q.TokenizeAll(pick(exs, idx))
					if err != nil {
						t.Fatal(err)
					}
					want := tokenizeRun{docs: docs, st: st}
					got, err := whole.Select(idx, p.Opts.MaxPositions, nil)
					if err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%d workers, %s", workers, name)
					sameRun(t, what, want, tokenizeRun{docs: got.Docs, st: got.Stats})
					if !slices.Equal(got.Keys, prep.ExampleKeys(pick(exs, idx))) {
						t.Errorf("%s: keys differ", what)
					}
					if cached.Outcomes == nil {
						continue
					}
					got, err = cached.Select(idx, p.Opts.MaxPositions, func(i int) string { return exs[i].Source })
					if err != nil {
						t.Fatal(err)
					}
					sameRun(t, what+", from the cache", want, tokenizeRun{docs: got.Docs, st: got.Stats})
				}
			}
		})
	}
}

func testCacheKey() prep.CacheKey {
	return prep.CacheKey{Tokenizer: prep.HashString("tok"), Template: prep.HashString("tmpl"), Options: prep.OptionsHash(prep.Options{}, 0)}
}

// TestCacheRecordsCounts: a token cache records what became of every
// example, so its Stats are tokenising's (a warm run printed no
// truncated or dropped counts: the cache kept the documents only), and
// the outcomes are checked against the header's counts when it is opened.
func TestCacheRecordsCounts(t *testing.T) {
	tok, eos := tinyTokenizer(t)
	exs := varied(400, 0, 48)[1:] // the bad example left out
	for _, overflow := range []prep.Overflow{prep.Truncate, prep.Drop} {
		p := &prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, Tmpl: ctxRenderer(limitedTemplate(t)), EOS: eos, Opts: prep.Options{MaxLen: 48, Overflow: overflow, MaxPositions: 40}}
		whole, err := p.TokenizeAllOutcomes(exs)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "train.tokens")
		if err := prep.WriteTokenization(context.Background(), path, testCacheKey(), whole, nil); err != nil {
			t.Fatal(err)
		}
		c, err := prep.OpenCache(path, testCacheKey())
		if err != nil {
			t.Fatal(err)
		}
		got, want := c.Stats(40), whole.Stats
		c.Close()
		if got.FirstOverPositions == "" || !strings.Contains(got.FirstOverPositions, path) {
			t.Errorf("first over the positions: %q, want the cache's document", got.FirstOverPositions)
		}
		got.FirstOverPositions, want.FirstOverPositions = "", ""
		if !reflect.DeepEqual(got, want) || want.Truncated+want.Dropped == 0 || overflow == prep.Truncate && want.DroppedNoLabel == 0 {
			t.Errorf("overflow %d: the cache's stats\n%+v, tokenising's\n%+v", overflow, got, want)
		}

		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for name, edit := range map[string]func([]byte){
			"a truncated example counted as dropped": func(b []byte) {
				binary.LittleEndian.PutUint64(b[176:], binary.LittleEndian.Uint64(b[176:])+1)
			},
			"an unknown outcome": func(b []byte) {
				d := binary.LittleEndian.Uint64(b[144:])
				b[200+8*(d+1)+4*d] = 9 // the first example's (no keys recorded)
			},
		} {
			b := slices.Clone(raw)
			edit(b)
			// The checksum written anew, as a faulty writer would: the
			// outcomes are still checked against the counts.
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
			bad := filepath.Join(t.TempDir(), "bad.tokens")
			os.WriteFile(bad, b, 0o644)
			if _, err := prep.OpenCache(bad, testCacheKey()); !errors.Is(err, prep.ErrCacheCorrupt) || !strings.Contains(err.Error(), "outcome") {
				t.Errorf("%s: %v, want a corrupt cache for its outcomes", name, err)
			}
		}
	}
}

// TestCacheOfAnOlderVersionIsRebuiltSaying: a cache of the previous layout
// (version 5: this one without the checksum that ends it) is stale, never
// read as this one, and OpenOrBuildLog rebuilds it with a line saying why.
func TestCacheOfAnOlderVersionIsRebuiltSaying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train.tokens")
	docs := []prep.Tokenized{{IDs: []int32{1, 2, 3}, Labels: []int32{prep.IgnoreIndex, 2, 3}}}
	if err := prep.WriteCache(path, testCacheKey(), docs); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	raw = raw[:len(raw)-4]
	binary.LittleEndian.PutUint32(raw[8:], 5)
	os.WriteFile(path, raw, 0o644)
	if _, err := prep.OpenCache(path, testCacheKey()); !errors.Is(err, prep.ErrCacheStale) || !strings.Contains(err.Error(), "version 5") {
		t.Fatalf("opening a version 5 cache: %v", err)
	}
	var log strings.Builder
	c, rebuilt, err := prep.OpenOrBuildLog(context.Background(), path, testCacheKey(), &log, func() ([]prep.Tokenized, error) { return docs, nil })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if want := "cache format version 5, this ftune writes version 6: rebuilding it"; !rebuilt || !strings.Contains(log.String(), want) || !strings.Contains(log.String(), path) {
		t.Errorf("rebuilt %v, log %q: want it to say %q", rebuilt, log.String(), want)
	}
}
