package augment

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/prep"
)

// templated are n texts of 100 words in common and 20 of their own: each
// pair at similarity 98/138, under the 0.8 threshold but alike enough to
// share LSH bands (templated records: forms, logs, product descriptions).
func templated(n int) []string {
	common := make([]string, 100)
	for i := range common {
		common[i] = fmt.Sprintf("w%d", i)
	}
	c := strings.Join(common, " ")
	texts := make([]string, n)
	for i := range texts {
		var b strings.Builder
		b.WriteString(c)
		for k := range 20 {
			fmt.Fprintf(&b, " u%d_%d", i, k)
		}
		texts[i] = b.String()
	}
	return texts
}

// TestDedupTemplatedRecordsBounded: 4,000 templated records, all kept,
// take about a second (each used to be compared with a share of all
// the records kept before it, once per band they shared: over two
// minutes), and exact copies of them at the end, far past the bucket cap,
// are still removed.
func TestDedupTemplatedRecordsBounded(t *testing.T) {
	const n = 4000
	texts := templated(n)
	copies := []int{0, 1, 2000, n - 1}
	for _, i := range copies {
		texts = append(texts, strings.ToUpper(texts[i])+" ")
	}
	type result struct {
		keep, dupOf []int
		err         error
	}
	done := make(chan result, 1)
	t0 := time.Now()
	go func() {
		keep, dupOf, err := Dedup(texts, DedupOptions{Seed: 1})
		done <- result{keep, dupOf, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Dedup of %d templated records took over 20 s", len(texts))
	}
	t.Logf("%d templated records in %v", len(texts), time.Since(t0))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.keep) != n || r.keep[0] != 0 || r.keep[n-1] != n-1 {
		t.Errorf("kept %d of %d, want the %d originals", len(r.keep), len(texts), n)
	}
	if got := r.dupOf[n:]; !slices.Equal(got, copies) {
		t.Errorf("the copies at the end are duplicates of %v, want %v", got, copies)
	}
}

// TestSimilarIsJaccard: similar, which stops early, answers as the exact
// similarity does, at thresholds on and about the similarities themselves.
func TestSimilarIsJaccard(t *testing.T) {
	r := prep.NewRand(3)
	set := func() []uint64 {
		var s []uint64
		for range r.Intn(12) {
			s = append(s, uint64(r.Intn(16)))
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	for range 20000 {
		a, b := set(), set()
		s := jaccard(a, b)
		for _, th := range []float64{0, s, math.Nextafter(s, 0), math.Nextafter(s, 2), 0.5, 0.8, 1, math.NaN()} {
			if got, want := similar(a, b, th), s >= th; got != want {
				t.Fatalf("similar(%v, %v, %v) = %v, jaccard %v", a, b, th, got, s)
			}
		}
	}
}

// TestDedupBucketCapKeepsExactDuplicates: with full buckets (a cap of one
// text), texts whose every band is in a full bucket are still compared
// with the first kept text of their signature, so exact duplicates are
// removed; nothing under the threshold is.
func TestDedupBucketCapKeepsExactDuplicates(t *testing.T) {
	defer func(c int) { dedupBucketCap = c }(dedupBucketCap)
	dedupBucketCap = 1
	words := strings.Fields("a b c d e f g h i j k l")
	var texts []string
	var pick func(from int, chosen []string)
	pick = func(from int, chosen []string) { // the 792 sets of 5 of the 12 words
		if len(chosen) == 5 {
			texts = append(texts, strings.Join(chosen, " "))
			return
		}
		for i := from; i < len(words); i++ {
			pick(i+1, append(chosen, words[i]))
		}
	}
	pick(0, nil)
	n := len(texts)
	copies := []int{100, 500, n - 2, n - 1}
	for _, i := range copies { // the same words backwards: the same set of 1-word shingles
		w := strings.Fields(texts[i])
		slices.Reverse(w)
		texts = append(texts, strings.Join(w, " "))
	}
	keep, dupOf, err := Dedup(texts, DedupOptions{Shingle: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(keep) != n {
		t.Errorf("kept %d of %d, want the %d sets (similarity at most 4/6)", len(keep), len(texts), n)
	}
	if got := dupOf[n:]; !slices.Equal(got, copies) {
		t.Errorf("the copies are duplicates of %v, want %v", got, copies)
	}
}
