package augment

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// DedupOptions configure near-duplicate removal.
type DedupOptions struct {
	// Threshold is the Jaccard similarity of word shingles at or above
	// which two texts are duplicates (default 0.8).
	Threshold float64
	// Shingle is the number of words per shingle (default 3).
	Shingle int
	// Bands and Rows shape the MinHash LSH index: Bands*Rows hash functions;
	// pairs with similarity s become candidates with probability
	// 1-(1-s^Rows)^Bands (defaults 32 x 4: 0.99 at s = 0.7).
	Bands, Rows int
	Seed        uint64
}

func (o *DedupOptions) defaults() {
	if o.Threshold == 0 {
		o.Threshold = 0.8
	}
	if o.Shingle == 0 {
		o.Shingle = 3
	}
	if o.Bands == 0 {
		o.Bands = 32
	}
	if o.Rows == 0 {
		o.Rows = 4
	}
}

// shingles is the sorted set of hashes of the overlapping k-word windows
// of normalised text (one window of all the words when there are fewer
// than k, one hash for a text without words).
func shingles(text string, k int) []uint64 {
	words := strings.Fields(strings.ToLower(text))
	if len(words) < k {
		k = max(len(words), 1)
	}
	var out []uint64
	for i := 0; i+k <= len(words) || (i == 0 && len(words) == 0); i++ {
		h := fnv.New64a()
		for _, w := range words[i:min(i+k, len(words))] {
			h.Write([]byte(w))
			h.Write([]byte{0})
		}
		out = append(out, h.Sum64())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// jaccard is the exact similarity of two sorted shingle sets.
func jaccard(a, b []uint64) float64 {
	inter := 0
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			inter++
			i, j = i+1, j+1
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// similar reports whether jaccard(a, b) >= t, giving up as soon as the
// shingles left cannot reach t: the intersection is then at most
// bound = min(len(a)-onlyA, len(b)-onlyB), the similarity at most
// bound/(len(a)+len(b)-bound) (it grows with the intersection, and
// rounding keeps the order), so the answer is always jaccard's.
func similar(a, b []uint64, t float64) bool {
	inter, onlyA, onlyB := 0, 0, 0
	below := func() bool {
		bound := min(len(a)-onlyA, len(b)-onlyB)
		union := len(a) + len(b) - bound
		return union > 0 && float64(bound)/float64(union) < t
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i, onlyA = i+1, onlyA+1
			if below() {
				return false
			}
		case a[i] > b[j]:
			j, onlyB = j+1, onlyB+1
			if below() {
				return false
			}
		default:
			inter++
			i, j = i+1, j+1
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1 >= t
	}
	return float64(inter)/float64(union) >= t
}

// Dedup finds near-duplicate texts. keep lists the indices kept (the first
// of every group of duplicates, in order); dupOf[i] is the kept index text
// i duplicates, or -1. Candidates come from MinHash LSH and are confirmed
// with the exact Jaccard similarity, so no pair below Threshold is removed.
// Time is linear in the number of texts: a band's bucket holds at most
// dedupBucketCap (64) kept texts, so among many texts alike but under the
// threshold, a near duplicate of one past the cap may be kept (exact
// duplicates never are).
func Dedup(texts []string, o DedupOptions) (keep, dupOf []int, err error) {
	return dedup(len(texts), func(i int) string { return texts[i] }, o)
}

// How dedup keeps its memory and time down on large data (a 200 MB file
// cost 1.4 GB more and 37 s when every text's shingle set was a map, kept
// for the whole pass, and each band's index was keyed by its signature
// as a string):
//   - The MinHash signatures, the costly part, are computed on every core,
//     a chunk of texts at a time; the pass that decides runs in text order.
//   - Only a hash of each band of the signature is kept, for the kept
//     texts: two texts whose bands differ but whose band hashes collide
//     (2^-64) just become a candidate pair, which the exact similarity
//     then judges.
//   - Shingle sets are made only for candidate pairs (near duplicates are
//     rare), from the texts, and the last few thousand are remembered.
//   - A text is compared with a kept text once, however many bands they
//     share (a stamp per text says it was compared for this one).
//   - A band's bucket holds at most dedupBucketCap kept texts, the first
//     kept with that band hash; the others are not indexed in that band
//     (they still are in their other bands). This is the usual LSH bucket
//     cap. Buckets only fill up with texts alike enough to share bands but
//     under the threshold, all kept (templated records: forms, logs,
//     product descriptions sharing most of their words); without the cap
//     each text was compared with a share of all the texts kept before it,
//     quadratic in their number (4,000 such records took over two
//     minutes). What it costs: a text whose only near duplicates sit past
//     the cap in every band they share is kept. Exact duplicates are
//     still removed: the kept texts are also indexed by their whole
//     signature, uncapped, and a text that found no duplicate in its bands
//     is compared with the first kept text of the same signature.
//
// Work per text is bounded: Bands lookups, at most Bands*dedupBucketCap+1
// exact comparisons (few in practice: the same texts fill the buckets of
// different bands), each linear in the two texts' shingles; the whole pass
// is linear in the number of texts, the index at most Bands+1 entries a
// kept text.
//
// The result is that of comparing with the kept texts in the order of the
// bands, each band's texts in order, stopping at the first at or above
// the threshold: while no bucket is full, what the exhaustive search
// (every kept text before it) finds whenever LSH proposes the pair.

// dedupChunk is how many texts' signatures are computed at a time (tests
// make it small to cross chunks).
var dedupChunk = 4096

// dedupBucketCap is the most kept texts a band's bucket holds (tests make
// it small to fill buckets).
var dedupBucketCap = 64

// dedup is Dedup over n texts, text(i) giving text i (built on demand:
// DedupExamples writes an example's messages out as one text).
func dedup(n int, text func(int) string, o DedupOptions) (keep, dupOf []int, err error) {
	o.defaults()
	if o.Threshold < 0 || o.Threshold > 1 || o.Shingle < 1 || o.Bands < 1 || o.Rows < 1 {
		return nil, nil, fmt.Errorf("dedup: bad options %+v", o)
	}
	r := prep.NewRand(o.Seed)
	seeds := make([]uint64, o.Bands*o.Rows)
	for i := range seeds {
		seeds[i] = r.Uint64()
	}
	idx := newBandIndex(o.Bands)
	sets := map[int][]uint64{} // shingle sets of candidates, a bounded memo
	set := func(i int) []uint64 {
		if s, ok := sets[i]; ok {
			return s
		}
		if len(sets) >= dedupChunk {
			clear(sets)
		}
		sets[i] = shingles(text(i), o.Shingle)
		return sets[i]
	}
	// seen[j] == i+1: kept text j was compared with text i.
	seen := make([]int32, n)
	// whole: the first kept text of each whole-signature hash.
	whole := map[uint64]int32{}
	dupOf = make([]int, n)
	bands := make([]uint64, dedupChunk*o.Bands)
	for lo := 0; lo < n; lo += dedupChunk {
		hi := min(lo+dedupChunk, n)
		bandHashes(lo, hi, text, seeds, o, bands)
		for i := lo; i < hi; i++ {
			dupOf[i] = -1
			stamp := int32(i + 1)
			mine := bands[(i-lo)*o.Bands : (i-lo+1)*o.Bands]
			var sig uint64
			for _, h := range mine {
				sig = mix64(sig ^ h)
			}
		search:
			for b, h := range mine {
				for _, j := range idx.candidates(b, h) {
					if seen[j] == stamp {
						continue
					}
					seen[j] = stamp
					if similar(set(i), set(j), o.Threshold) {
						dupOf[i] = j
						break search
					}
				}
			}
			if j, ok := whole[sig]; ok && dupOf[i] < 0 && seen[j] != stamp {
				if similar(set(i), set(int(j)), o.Threshold) {
					dupOf[i] = int(j)
				}
			}
			if dupOf[i] >= 0 {
				continue
			}
			keep = append(keep, i)
			for b, h := range mine {
				idx.add(b, h, i, dedupBucketCap)
			}
			if _, ok := whole[sig]; !ok {
				whole[sig] = int32(i)
			}
		}
	}
	return keep, dupOf, nil
}

// bandHashes writes the band hashes of texts lo..hi-1 into out, Bands a
// text, on GOMAXPROCS goroutines.
func bandHashes(lo, hi int, text func(int) string, seeds []uint64, o DedupOptions, out []uint64) {
	workers := min(runtime.GOMAXPROCS(0), hi-lo)
	var next atomic.Int64
	next.Store(int64(lo))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			sig := make([]uint64, len(seeds))
			for {
				i := int(next.Add(1)) - 1
				if i >= hi {
					return
				}
				for h := range sig {
					sig[h] = ^uint64(0)
				}
				for _, x := range shingles(text(i), o.Shingle) {
					for h, s := range seeds {
						sig[h] = min(sig[h], mix64(x^s))
					}
				}
				for b := range o.Bands {
					var bh uint64
					for _, v := range sig[b*o.Rows : (b+1)*o.Rows] {
						bh = mix64(bh ^ v)
					}
					out[(i-lo)*o.Bands+b] = bh
				}
			}
		})
	}
	wg.Wait()
}

// bandIndex holds, per band, the kept texts by band hash, in the order
// they were kept, at most a cap of them: the first of a hash in a map of
// its own (most hashes have one text), the others apart.
type bandIndex struct {
	first []map[uint64]int32
	more  map[bandHash][]int32
	buf   []int
}

type bandHash struct {
	band int
	hash uint64
}

func newBandIndex(bands int) *bandIndex {
	x := &bandIndex{first: make([]map[uint64]int32, bands), more: map[bandHash][]int32{}}
	for b := range x.first {
		x.first[b] = map[uint64]int32{}
	}
	return x
}

// add indexes kept text i under hash h in band, unless the bucket already
// holds limit texts.
func (x *bandIndex) add(band int, h uint64, i, limit int) {
	if _, ok := x.first[band][h]; !ok {
		x.first[band][h] = int32(i)
		return
	}
	k := bandHash{band, h}
	if len(x.more[k]) < limit-1 {
		x.more[k] = append(x.more[k], int32(i))
	}
}

// candidates are the kept texts with hash h in band, in the order they
// were kept; the slice is reused by the next call.
func (x *bandIndex) candidates(band int, h uint64) []int {
	j, ok := x.first[band][h]
	if !ok {
		return nil
	}
	x.buf = append(x.buf[:0], int(j))
	for _, j := range x.more[bandHash{band, h}] {
		x.buf = append(x.buf, int(j))
	}
	return x.buf
}

// DedupExamples removes near-duplicate examples (all message contents or
// the text compared together), keeping the first of each group. Examples
// are duplicates only when their tools and their tool calls (functions and
// arguments, in order) are the same: a conversation that calls another
// function, or the same with other arguments, or that has other tools to
// call, teaches another action however alike its words. Calls' ids and
// tool results' ids and names are compared with the words (ids are often
// random, so they do not keep duplicates apart on their own).
func DedupExamples(exs []format.Example, o DedupOptions) ([]format.Example, int, error) {
	text := func(i int) string {
		var b strings.Builder
		b.WriteString(exs[i].Text)
		for _, m := range exs[i].Messages {
			b.WriteString("\n" + m.Role + ": " + m.Content)
			for _, c := range m.ToolCalls {
				b.WriteString("\ncall " + c.ID + " " + c.Name + " " + c.Arguments)
			}
			if m.ToolCallID != "" || m.Name != "" {
				b.WriteString("\nresult " + m.ToolCallID + " " + m.Name)
			}
		}
		return b.String()
	}
	// Examples by their tools and calls; almost always one group.
	var order []string
	groups := map[string][]int{}
	for i, ex := range exs {
		k := toolKey(ex)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var keep []int
	for _, k := range order {
		g := groups[k]
		kept, _, err := dedup(len(g), func(j int) string { return text(g[j]) }, o)
		if err != nil {
			return nil, 0, err
		}
		for _, j := range kept {
			keep = append(keep, g[j])
		}
	}
	slices.Sort(keep)
	out := make([]format.Example, len(keep))
	for k, i := range keep {
		out[k] = exs[i]
	}
	return out, len(exs) - len(keep), nil
}

// toolKey is what two examples must share to be duplicates: their tools
// and their calls' functions and arguments, in order ("" without any).
func toolKey(ex format.Example) string {
	var b strings.Builder
	b.WriteString(ex.Tools)
	for _, m := range ex.Messages {
		for _, c := range m.ToolCalls {
			b.WriteString("\x00" + c.Name + "\x00" + c.Arguments)
		}
	}
	return b.String()
}
