package augment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"

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

// shingles hashes the overlapping k-word windows of normalised text.
func shingles(text string, k int) map[uint64]bool {
	words := strings.Fields(strings.ToLower(text))
	out := map[uint64]bool{}
	if len(words) < k {
		k = max(len(words), 1)
	}
	for i := 0; i+k <= len(words) || (i == 0 && len(words) == 0); i++ {
		h := fnv.New64a()
		for _, w := range words[i:min(i+k, len(words))] {
			h.Write([]byte(w))
			h.Write([]byte{0})
		}
		out[h.Sum64()] = true
	}
	return out
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Jaccard is the exact similarity of two shingle sets.
func jaccard(a, b map[uint64]bool) float64 {
	inter := 0
	for x := range a {
		if b[x] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// Dedup finds near-duplicate texts. keep lists the indices kept (the first
// of every group of duplicates, in order); dupOf[i] is the kept index text
// i duplicates, or -1. Candidates come from MinHash LSH and are confirmed
// with the exact Jaccard similarity, so no pair below Threshold is removed.
func Dedup(texts []string, o DedupOptions) (keep, dupOf []int, err error) {
	o.defaults()
	if o.Threshold < 0 || o.Threshold > 1 || o.Shingle < 1 || o.Bands < 1 || o.Rows < 1 {
		return nil, nil, fmt.Errorf("dedup: bad options %+v", o)
	}
	nh := o.Bands * o.Rows
	r := prep.NewRand(o.Seed)
	seeds := make([]uint64, nh)
	for i := range seeds {
		seeds[i] = r.Uint64()
	}
	sets := make([]map[uint64]bool, len(texts))
	buckets := make([]map[string][]int, o.Bands)
	for b := range buckets {
		buckets[b] = map[string][]int{}
	}
	dupOf = make([]int, len(texts))
	sig := make([]uint64, nh)
	key := make([]byte, 8*o.Rows)
	for i, t := range texts {
		dupOf[i] = -1
		sets[i] = shingles(t, o.Shingle)
		for h := range sig {
			sig[h] = ^uint64(0)
		}
		for x := range sets[i] {
			for h, s := range seeds {
				sig[h] = min(sig[h], mix64(x^s))
			}
		}
		// Compare with kept texts sharing a band, then index this one if it
		// is kept: a duplicate of a duplicate points at the kept original.
		var bandKeys []string
		for b := range o.Bands {
			for k := range o.Rows {
				binary.LittleEndian.PutUint64(key[8*k:], sig[b*o.Rows+k])
			}
			bk := string(key)
			bandKeys = append(bandKeys, bk)
			if dupOf[i] >= 0 {
				continue
			}
			for _, j := range buckets[b][bk] {
				if jaccard(sets[i], sets[j]) >= o.Threshold {
					dupOf[i] = j
					break
				}
			}
		}
		if dupOf[i] >= 0 {
			sets[i] = nil // only kept texts are compared against
			continue
		}
		keep = append(keep, i)
		for b, bk := range bandKeys {
			buckets[b][bk] = append(buckets[b][bk], i)
		}
	}
	return keep, dupOf, nil
}

// DedupExamples removes near-duplicate examples (all message contents or
// the text compared together), keeping the first of each group.
func DedupExamples(exs []format.Example, o DedupOptions) ([]format.Example, int, error) {
	texts := make([]string, len(exs))
	for i, ex := range exs {
		var b strings.Builder
		b.WriteString(ex.Text)
		for _, m := range ex.Messages {
			b.WriteString("\n" + m.Role + ": " + m.Content)
		}
		texts[i] = b.String()
	}
	keep, _, err := Dedup(texts, o)
	if err != nil {
		return nil, 0, err
	}
	out := make([]format.Example, len(keep))
	for k, i := range keep {
		out[k] = exs[i]
	}
	return out, len(exs) - len(keep), nil
}
