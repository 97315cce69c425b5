package prep

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// compactExamples are chat and completion examples, some longer than
// MaxLen (truncated) and some plain text kept whole to be split.
func compactExamples(n int) []format.Example {
	exs := make([]format.Example, 0, n)
	for i := range n {
		s := fmt.Sprint("ex", i)
		switch i % 3 {
		case 0:
			exs = append(exs, format.Example{Source: s, Messages: msgs("user", strings.Repeat("q", 1+i%7), "assistant", strings.Repeat("a", 3+i%40))})
		case 1:
			exs = append(exs, format.Example{Source: s, Messages: msgs("system", "s", "user", strings.Repeat("x", i%9), "assistant", strings.Repeat("c", 2+i%50)), TextPair: true})
		default:
			exs = append(exs, format.Example{Source: s, Text: strings.Repeat("t", 2+i%90)})
		}
	}
	return exs
}

// TestCompactSameLabels: Compact keeps every document's labels as a mask,
// the same Label for every token, ids without a truncated tail, and the
// rows packed and padded from them are those of the uncompacted documents.
func TestCompactSameLabels(t *testing.T) {
	exs := compactExamples(120)
	for _, overflow := range []Overflow{Truncate, Split} {
		t.Run(fmt.Sprint(overflow), func(t *testing.T) {
			p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Opts: Options{MaxLen: 40, Overflow: overflow}, Workers: 2}
			want, wst, err := p.TokenizeAll(exs)
			if err != nil {
				t.Fatal(err)
			}
			q := *p
			q.Compact = true
			got, gst, err := q.TokenizeAll(exs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gst, wst) || len(got) != len(want) {
				t.Fatalf("stats %+v, %d documents; want %+v, %d", gst, len(got), wst, len(want))
			}
			truncated := 0
			for i, d := range got {
				w := want[i]
				if d.Labels != nil || len(d.Learnt) != len(d.IDs) || !slices.Equal(d.IDs, w.IDs) || d.Source != w.Source {
					t.Fatalf("document %d: %d labels, %d flags, ids %v; want ids %v as a mask", i, len(d.Labels), len(d.Learnt), d.IDs, w.IDs)
				}
				if cap(d.IDs) != len(d.IDs) {
					t.Fatalf("document %d: %d ids in an array of %d", i, len(d.IDs), cap(d.IDs))
				}
				if cap(w.IDs) > len(w.IDs) {
					truncated++
				}
				for j := range d.IDs {
					if d.Label(j) != w.Label(j) {
						t.Fatalf("document %d token %d: label %d, want %d", i, j, d.Label(j), w.Label(j))
					}
				}
			}
			if overflow == Truncate && truncated == 0 {
				t.Fatal("no document was truncated: the test covers nothing of truncation")
			}
			gd, _, _ := SplitLong(got, 40)
			wd, _, _ := SplitLong(want, 40)
			for _, strat := range []PackStrategy{PackSequential, PackFirstFitDecreasing} {
				gr, gs, err := Pack(gd, PackOptions{SeqLen: 40, Strategy: strat})
				if err != nil {
					t.Fatal(err)
				}
				wr, ws, _ := Pack(wd, PackOptions{SeqLen: 40, Strategy: strat})
				if !reflect.DeepEqual(gr, wr) || gs != ws {
					t.Fatalf("strategy %d: rows of the compacted documents differ", strat)
				}
			}
			gp, _ := Pad(gd, 0)
			wp, _ := Pad(wd, 0)
			if !reflect.DeepEqual(gp, wp) {
				t.Fatal("padded rows of the compacted documents differ")
			}
		})
	}
}

// TestCompactLeavesOtherLabels: a document with a label that is neither
// its token nor IgnoreIndex keeps its Labels (Pack refuses it by name).
func TestCompactLeavesOtherLabels(t *testing.T) {
	d := Tokenized{IDs: []int32{5, 6, 7}, Labels: []int32{IgnoreIndex, 6, 9}}
	if c := d.compact(); !reflect.DeepEqual(c, d) {
		t.Fatalf("compact(%+v) = %+v", d, c)
	}
	d.Labels[2] = 7
	c := d.compact()
	if c.Labels != nil || !slices.Equal(c.Learnt, []byte{0, 1, 1}) {
		t.Fatalf("compact = %+v, want mask 0 1 1", c)
	}
}

// TestReleaseSameRows: packing or padding with Release gives the rows
// it gives without, documents cut into pieces included, and zeroes every
// document that went into a row.
func TestReleaseSameRows(t *testing.T) {
	for seed := range uint64(4) {
		docs := randomDocs(300, 90, seed)
		docs = append(docs, Tokenized{}) // an empty one: no row
		pieces, split, _ := SplitLong(docs, 32)
		if split == 0 {
			t.Fatal("nothing split")
		}
		for _, strat := range []PackStrategy{PackSequential, PackFirstFitDecreasing} {
			want, wst, err := Pack(pieces, PackOptions{SeqLen: 32, Strategy: strat})
			if err != nil {
				t.Fatal(err)
			}
			in := slices.Clone(pieces)
			got, gst, err := PackContext(context.Background(), in, PackOptions{SeqLen: 32, Strategy: strat, Release: true})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || gst != wst {
				t.Fatalf("seed %d strategy %d: released rows differ", seed, strat)
			}
			for i, d := range in {
				if d.IDs != nil && len(d.IDs) > 0 {
					t.Fatalf("seed %d strategy %d: document %d not released", seed, strat, i)
				}
			}
		}
		want, err := Pad(pieces, 0)
		if err != nil {
			t.Fatal(err)
		}
		in := slices.Clone(pieces)
		got, err := PadReleasing(context.Background(), in, 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: padded rows released differ (%v)", seed, err)
		}
		for i, d := range in {
			if len(d.IDs) > 0 {
				t.Fatalf("seed %d: padded document %d not released", seed, i)
			}
		}
	}
}

// TestCompactReleaseHeap: n documents tokenised under Compact and packed
// under Release hold the heap for little more than their rows, 5 bytes a
// token: their 4-byte labels are not kept, and each document's arrays go
// as its row is built (below 6.5 bytes a token; without, the documents' 8 bytes a token and the
// rows' 5 are live together at the end of packing).
func TestCompactReleaseHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	const n, l = 2000, 1000
	exs := make([]format.Example, n)
	for i := range exs {
		exs[i] = format.Example{Source: fmt.Sprint("t", i), Text: strings.Repeat(string(rune('a'+i%26)), l)}
	}
	p := &Preprocessor{Enc: byteEncoder{}, EOS: fakeEOT, Opts: Options{MaxLen: 256, Overflow: Split}, Workers: 1, Compact: true}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	docs, st, err := p.TokenizeAll(exs)
	if err != nil {
		t.Fatal(err)
	}
	tokens := st.Tokens
	docsHeap := heap() - base
	if docsHeap > uint64(tokens)*13/2 {
		t.Errorf("documents of %d tokens hold %d bytes of heap, more than 6.5 a token", tokens, docsHeap)
	}
	t.Logf("%d tokens: %.2f bytes a token as documents", tokens, float64(docsHeap)/float64(tokens))
	pieces, _, _ := SplitLong(docs, 256)
	docs = nil
	// The peak of packing: the heap after the first half of the rows is
	// built, the other half's documents still to go.
	half := len(pieces) / 2
	rows, _, err := PackContext(context.Background(), pieces[:half], PackOptions{SeqLen: 256, Release: true})
	if err != nil {
		t.Fatal(err)
	}
	mid := heap() - base
	if mid > uint64(tokens)*13/2 {
		t.Errorf("half packed, %d tokens hold %d bytes of heap, more than 6.5 a token", tokens, mid)
	}
	t.Logf("%d tokens: %.2f bytes a token half packed", tokens, float64(mid)/float64(tokens))
	more, _, err := PackContext(context.Background(), pieces[half:], PackOptions{SeqLen: 256, Release: true})
	if err != nil {
		t.Fatal(err)
	}
	pieces = nil
	end := heap() - base
	if end > uint64(tokens)*13/2 {
		t.Errorf("packed, %d tokens hold %d bytes of heap, more than 6.5 a token", tokens, end)
	}
	t.Logf("%d tokens: %.2f bytes a token packed", tokens, float64(end)/float64(tokens))
	runtime.KeepAlive(rows)
	runtime.KeepAlive(more)
	runtime.KeepAlive(exs)
}

// TestRowsCompactSame: Rows gives the same rows, packed and padded, with
// the documents compacted as without (it lets each go as its row is
// built).
func TestRowsCompactSame(t *testing.T) {
	exs := compactExamples(90)
	for _, o := range []RowOptions{{Pack: true, SeqLen: 40}, {Pack: true, SeqLen: 40, Strategy: PackFirstFitDecreasing}, {SeqLen: 40}, {}} {
		p := &Preprocessor{Enc: byteEncoder{}, Tmpl: chatML{}, EOS: fakeEOT, Opts: Options{Overflow: Split}}
		want, wst, err := p.Rows(exs, o)
		if err != nil {
			t.Fatal(err)
		}
		p.Compact = true
		got, gst, err := p.Rows(exs, o)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gst, wst) || len(got) == 0 {
			t.Fatalf("%+v: rows of compacted documents differ (%d rows, want %d)", o, len(got), len(want))
		}
	}
}
