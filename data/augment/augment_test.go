package augment

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

func TestNEFTune(t *testing.T) {
	for _, tc := range []struct{ batch, seq, dim int }{{1, 1, 1}, {1, 7, 16}, {4, 128, 64}} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			n := tc.batch * tc.seq * tc.dim
			base := make([]float32, n)
			for i := range base {
				base[i] = float32(i%13) - 6
			}
			nf := NEFTune{Alpha: 5, Seed: 3}
			emb := slices.Clone(base)
			if err := nf.Apply(emb, tc.seq, tc.dim, 10, true); err != nil {
				t.Fatal(err)
			}
			m := nf.Magnitude(tc.seq, tc.dim)
			if want := 5 / math.Sqrt(float64(tc.seq*tc.dim)); m != want {
				t.Fatalf("magnitude %v, want alpha/sqrt(L*d) = %v", m, want)
			}
			sum, sq := 0.0, 0.0
			for i := range emb {
				d := float64(emb[i] - base[i])
				// float32 rounding of base+noise: |base| <= 6, so 1 ulp
				// of 8 bounds the error.
				if math.Abs(d) > m+8*0x1p-23 {
					t.Fatalf("noise %v beyond the bound %v", d, m)
				}
				sum += d
				sq += d * d
			}
			if n >= 1000 {
				// Uniform(-m, m): mean 0 (sd m/sqrt(3n)), variance m^2/3.
				if mean := sum / float64(n); math.Abs(mean) > 5*m/math.Sqrt(3*float64(n)) {
					t.Errorf("noise mean %v", mean)
				}
				if v := sq / float64(n); math.Abs(v-m*m/3) > 0.05*m*m/3 {
					t.Errorf("noise variance %v, want %v", v, m*m/3)
				}
			}
			again := slices.Clone(base)
			nf.Apply(again, tc.seq, tc.dim, 10, true)
			if !slices.Equal(again, emb) {
				t.Error("same seed and step, different noise")
			}
			other := slices.Clone(base)
			nf.Apply(other, tc.seq, tc.dim, 11, true)
			if slices.Equal(other, emb) {
				t.Error("another step drew the same noise")
			}
			eval := slices.Clone(base)
			nf.Apply(eval, tc.seq, tc.dim, 10, false)
			if !slices.Equal(eval, base) {
				t.Error("noise added at evaluation")
			}
		})
	}
	if err := (NEFTune{Alpha: 5}).Apply(make([]float32, 10), 3, 4, 0, true); err == nil {
		t.Error("accepted 10 values as [*, 3, 4]")
	}
	if err := (NEFTune{Alpha: -1}).Apply(make([]float32, 12), 3, 4, 0, true); err == nil {
		t.Error("accepted a negative alpha")
	}
}

func TestPromptDropout(t *testing.T) {
	const n = 20000
	doc := prep.Tokenized{IDs: make([]int32, n), Labels: make([]int32, n)}
	for i := range doc.IDs {
		doc.IDs[i] = int32(10 + i%50)
		doc.Labels[i] = prep.IgnoreIndex
		if i%4 == 3 {
			doc.Labels[i] = doc.IDs[i]
		}
	}
	orig := slices.Clone(doc.IDs)
	protect := func(id int32) bool { return id == 11 }
	for _, p := range []float64{0, 0.1, 0.5, 1} {
		d := PromptDropout{P: p, ReplaceID: 3, Protect: protect}
		out, err := d.Apply(doc, prep.NewRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(doc.IDs, orig) {
			t.Fatal("input modified")
		}
		if !slices.Equal(out.Labels, doc.Labels) || len(out.IDs) != n {
			t.Fatal("labels or length changed")
		}
		dropped, candidates := 0, 0
		for i, id := range out.IDs {
			learnt := doc.Labels[i] != prep.IgnoreIndex
			if (learnt || protect(orig[i])) && id != orig[i] {
				t.Fatalf("p=%v: token %d changed though learnt or protected", p, i)
			}
			if !learnt && !protect(orig[i]) {
				candidates++
				if id == 3 {
					dropped++
				}
			}
		}
		// Binomial sd sqrt(n p (1-p)) <= 61 for 15000 candidates; 5 sd.
		if want := p * float64(candidates); math.Abs(float64(dropped)-want) > 5*61 {
			t.Errorf("p=%v: dropped %d of %d", p, dropped, candidates)
		}
	}
	if _, err := (PromptDropout{P: 1.5}).Apply(doc, prep.NewRand(1)); err == nil {
		t.Error("accepted p = 1.5")
	}
}

var capitalGroup = []string{
	"What is the capital of {country}?",
	"Name the capital city of {country}.",
	"Which city is the capital of {country}?",
}

func TestRotator(t *testing.T) {
	rot, err := NewRotator([][]string{capitalGroup, {"Symbol of {el}?", "What is {el}'s symbol?"}})
	if err != nil {
		t.Fatal(err)
	}
	ex := format.Example{Messages: []format.Message{
		{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is the capital of Costa Rica?"}, {Role: "assistant", Content: "San Jose"},
	}}
	r := prep.NewRand(2)
	seen := map[string]bool{}
	for range 100 {
		out, ok := rot.Rotate(ex, r)
		if !ok {
			t.Fatal("no rotation")
		}
		q := out.Messages[1].Content
		if q == ex.Messages[1].Content {
			t.Fatal("rotation kept the same phrasing")
		}
		if g, _, v := rot.match(q); g != 0 || v["country"] != "Costa Rica" {
			t.Fatalf("rotated %q lost the slot value or group", q)
		}
		if !out.Messages[0].Equal(ex.Messages[0]) || !out.Messages[2].Equal(ex.Messages[2]) {
			t.Fatal("rotation changed another message")
		}
		seen[q] = true
	}
	if len(seen) != 2 || ex.Messages[1].Content != "What is the capital of Costa Rica?" {
		t.Errorf("phrasings used %v; input must be unchanged", seen)
	}
	if _, ok := rot.Rotate(format.Example{Messages: []format.Message{{Role: "user", Content: "Hello"}}}, r); ok {
		t.Error("rotated a message no template matches")
	}
	for _, bad := range [][][]string{{{"only one {x}"}}, {{"no slot", "none {x}"}}, {{"a {x}", "b {y}"}}, {{"{x} {x}", "{x}"}}} {
		if _, err := NewRotator(bad); err == nil {
			t.Errorf("NewRotator(%q) accepted", bad)
		}
	}
}

func TestDedup(t *testing.T) {
	base := "the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn near the river bank at dawn"
	texts := []string{
		base,
		"completely different sentence about chemistry and the atomic weight of iron which is about fifty six",
		base,                                     // exact duplicate
		strings.Replace(base, "dawn", "dusk", 1), // one word changed at the end
		strings.ToUpper(base[:1]) + base[1:] + " ",                             // case and spacing
		"the quick brown fox jumps over the lazy dog and nothing else happens", // shares a prefix only
		"",
		"",
	}
	keep, dupOf, err := Dedup(texts, DedupOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 5, 6}; !reflect.DeepEqual(keep, want) {
		t.Errorf("kept %v, want %v", keep, want)
	}
	if want := []int{-1, -1, 0, 0, 0, -1, -1, 6}; !reflect.DeepEqual(dupOf, want) {
		t.Errorf("dupOf %v, want %v", dupOf, want)
	}
	// Nothing below the threshold is ever removed, whatever LSH proposes.
	for i, j := range dupOf {
		if j >= 0 {
			if s := jaccard(shingles(texts[i], 3), shingles(texts[j], 3)); s < 0.8 {
				t.Errorf("%d removed as duplicate of %d at similarity %.2f", i, j, s)
			}
		}
	}
	// At the threshold is a duplicate: 8 of 10 distinct shingles shared.
	atThreshold := []string{"a b c d e f g h i j k", "a b c d e f g h i j z"}
	if s := jaccard(shingles(atThreshold[0], 3), shingles(atThreshold[1], 3)); s != 0.8 {
		t.Fatalf("similarity %v, want 0.8", s)
	}
	if keep, _, _ := Dedup(atThreshold, DedupOptions{Seed: 1}); len(keep) != 1 {
		t.Errorf("texts at the threshold: kept %v, want the first only", keep)
	}
	keep2, _, _ := Dedup(texts, DedupOptions{Seed: 1})
	if !reflect.DeepEqual(keep, keep2) {
		t.Error("not deterministic")
	}
	exs := []format.Example{{Text: base}, {Text: base + " "}, {Messages: []format.Message{{Role: "user", Content: "Summarise the scene."}, {Role: "assistant", Content: "A fox jumps over a dog."}}}}
	out, n, err := DedupExamples(exs, DedupOptions{})
	if err != nil || n != 1 || len(out) != 2 || out[1].Messages == nil {
		t.Errorf("DedupExamples removed %d, kept %+v, %v", n, out, err)
	}
}

// TestDedupRecall measures LSH recall on many near-duplicate pairs: with 32
// bands of 4 rows, a pair at similarity >= 0.8 is missed with probability
// (1-0.8^4)^32 < 1e-7.
func TestDedupRecall(t *testing.T) {
	r := prep.NewRand(9)
	var texts []string
	for i := range 300 {
		words := make([]string, 60)
		for k := range words {
			words[k] = fmt.Sprintf("w%d", r.Intn(5000))
		}
		texts = append(texts, strings.Join(words, " "))
		words[59] = fmt.Sprintf("changed%d", i) // one of 58 shingles differs: similarity 57/59
		texts = append(texts, strings.Join(words, " "))
	}
	keep, _, err := Dedup(texts, DedupOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(keep) != 300 {
		t.Errorf("kept %d of 600 texts, want the 300 originals", len(keep))
	}
}

func TestDataAugmentation(t *testing.T) {
	exs := []format.Example{
		{Messages: []format.Message{{Role: "user", Content: "What is the capital of Peru?"}, {Role: "assistant", Content: "Lima"}}},
		{Messages: []format.Message{{Role: "user", Content: "What is the capital of Peru?"}, {Role: "assistant", Content: "Lima"}}},
		{Messages: []format.Message{{Role: "user", Content: "Name the capital city of Chad."}, {Role: "assistant", Content: "N'Djamena"}}},
	}
	a := DataAugmentation{Phrasings: [][]string{capitalGroup}, RotateP: 1, DedupThreshold: 0.9, Seed: 3}
	kept, dups, err := a.Dedup(exs)
	if err != nil {
		t.Fatal(err)
	}
	out, rotated, err := a.Rephrase(kept)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || dups != 1 || rotated != 2 || exs[0].Messages[0].Content != "What is the capital of Peru?" || out[0].Messages[0].Content == exs[0].Messages[0].Content {
		t.Errorf("out %+v, %d duplicates, %d rotated", out, dups, rotated)
	}
	var zero DataAugmentation
	same, n, _ := zero.Dedup(exs)
	same, m, _ := zero.Rephrase(same)
	if !reflect.DeepEqual(same, exs) || n != 0 || m != 0 {
		t.Error("the zero DataAugmentation changed examples")
	}
	rows := []prep.Row{{InputIDs: []int32{5, 6, 7}, Learnt: []bool{false, false, true}}}
	d1, _ := DataAugmentation{PromptDropout: 1, DropoutID: 0}.Rows(rows, 0, 0)
	if !slices.Equal(d1[0].InputIDs, []int32{0, 0, 7}) || !slices.Equal(rows[0].InputIDs, []int32{5, 6, 7}) {
		t.Errorf("dropout gave %v", d1[0].InputIDs)
	}
	long := []prep.Row{{InputIDs: make([]int32, 200), Learnt: make([]bool, 200)}}
	for i := range long[0].InputIDs {
		long[0].InputIDs[i] = 9
	}
	half := DataAugmentation{PromptDropout: 0.5, DropoutID: 1}
	e0, _ := half.Rows(long, 0, 0)
	e1, _ := half.Rows(long, 1, 0)
	again, _ := half.Rows(long, 0, 0)
	if slices.Equal(e0[0].InputIDs, e1[0].InputIDs) || !slices.Equal(e0[0].InputIDs, again[0].InputIDs) {
		t.Error("prompt dropout must differ between epochs and repeat for the same batch")
	}
}

// TestDedupMatchesExhaustive compares Dedup with the exhaustive search it
// stands for (each text against every kept text before it) on texts
// edited to similarities on both sides of the threshold, across chunks of
// signatures: the same texts are kept, and every text removed duplicates
// a kept earlier one at or above the threshold.
func TestDedupMatchesExhaustive(t *testing.T) {
	defer func(c int) { dedupChunk = c }(dedupChunk)
	dedupChunk = 64
	r := prep.NewRand(11)
	var texts []string
	for range 150 {
		words := make([]string, 40)
		for k := range words {
			words[k] = fmt.Sprintf("w%d", r.Intn(3000))
		}
		texts = append(texts, strings.Join(words, " "))
		for _, edits := range []int{0, 1, 2, 3, 4, 6} { // similarity 1 down to about 0.5
			v := slices.Clone(words)
			for range edits {
				v[r.Intn(len(v))] = fmt.Sprintf("x%d", r.Intn(1<<30))
			}
			texts = append(texts, strings.Join(v, " "))
		}
	}
	for i := len(texts) - 1; i > 0; i-- { // variants apart from their originals, some before them
		j := r.Intn(i + 1)
		texts[i], texts[j] = texts[j], texts[i]
	}
	keep, dupOf, err := Dedup(texts, DedupOptions{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	sets := make([][]uint64, len(texts))
	for i, text := range texts {
		sets[i] = shingles(text, 3)
	}
	var want []int
	for i := range texts {
		dup := false
		for _, j := range want {
			if jaccard(sets[i], sets[j]) >= 0.8 {
				dup = true
				break
			}
		}
		if !dup {
			want = append(want, i)
		}
	}
	if !slices.Equal(keep, want) {
		t.Fatalf("kept %d texts, the exhaustive search %d", len(keep), len(want))
	}
	kept := map[int]bool{}
	for _, i := range keep {
		kept[i] = true
	}
	removed := 0
	for i, j := range dupOf {
		if j < 0 {
			continue
		}
		removed++
		if !kept[j] || j >= i || jaccard(sets[i], sets[j]) < 0.8 {
			t.Fatalf("text %d removed as a duplicate of %d (kept %v, similarity %.3f)", i, j, kept[j], jaccard(sets[i], sets[j]))
		}
	}
	t.Logf("%d texts: %d kept, %d removed", len(texts), len(keep), removed)
	if removed < 300 || len(keep) < 300 {
		t.Errorf("%d removed and %d kept: the texts do not test both sides of the threshold", removed, len(keep))
	}
}
