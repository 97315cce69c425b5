package prep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestMappedDocsMakeTheSameRows: documents read in place from a cache
// (MappedDocs: ids and mask in the mapping, no labels built) make rows
// equal to those of the documents read as before (Docs, ids copied out,
// labels built from the mask): packed both ways, padded, cut into pieces
// at row lengths around the documents' lengths; their labels, counts and
// a cache written again from them are the same too.
func TestMappedDocsMakeTheSameRows(t *testing.T) {
	docs := randomDocs(300, 700, 5)
	r := NewRand(9)
	for i := 0; i < 40; i++ { // learnt tokens scattered, not a prompt's suffix
		d := randomDocs(1, 400, uint64(100+i))[0]
		for j := range d.Labels {
			if r.Intn(3) == 0 {
				d.Labels[j] = IgnoreIndex
			}
		}
		docs = append(docs, d)
	}
	docs = append(docs, Tokenized{Subject: 1}, Tokenized{IDs: []int32{7}, Labels: []int32{7}})
	for i := range docs {
		docs[i].Source = "" // a cache records none
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "train.tokens")
	if err := WriteCache(path, testKey(), docs); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(path, testKey())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	old := c.Docs() // as recipe read a cache before
	for i := range old {
		old[i].IDs = slices.Clone(old[i].IDs)
	}
	mapped := c.MappedDocs()
	for i, d := range mapped {
		if d.Labels != nil || len(d.Learnt) != len(d.IDs) || d.Subject != old[i].Subject || !slices.Equal(d.IDs, old[i].IDs) {
			t.Fatalf("document %d: %+v", i, d)
		}
		for j := range d.IDs {
			if d.Label(j) != old[i].Labels[j] || old[i].Label(j) != old[i].Labels[j] {
				t.Fatalf("document %d token %d: label %d, was %d", i, j, d.Label(j), old[i].Labels[j])
			}
		}
	}
	for _, n := range []int{1, 2, 63, 64, 65, 256, 399, 400, 700, 701} {
		a, splitA, piecesA := SplitLong(old, n)
		b, splitB, piecesB := SplitLong(mapped, n)
		if splitA != splitB || piecesA != piecesB || len(a) != len(b) {
			t.Fatalf("length %d: split %d/%d pieces %d/%d docs %d/%d", n, splitA, splitB, piecesA, piecesB, len(a), len(b))
		}
		for _, s := range []PackStrategy{PackSequential, PackFirstFitDecreasing} {
			ra, sa, errA := Pack(a, PackOptions{SeqLen: n, Strategy: s})
			rb, sb, errB := Pack(b, PackOptions{SeqLen: n, Strategy: s})
			if errA != nil || errB != nil || sa != sb || len(ra) == 0 || !reflect.DeepEqual(ra, rb) {
				t.Fatalf("length %d strategy %d: packed rows differ (%v, %v; %+v, %+v)", n, s, errA, errB, sa, sb)
			}
		}
		pa, errA := Pad(a, n)
		pb, errB := Pad(b, n)
		if errA != nil || errB != nil || len(pa) == 0 || !reflect.DeepEqual(pa, pb) {
			t.Fatalf("length %d: padded rows differ (%v, %v)", n, errA, errB)
		}
	}
	outcomes := c.Outcomes()
	idx := make([]int, len(outcomes))
	for i := range idx {
		idx[i] = i
	}
	sa, errA := Tokenization{Docs: old, Outcomes: outcomes}.Select(idx, 200, nil)
	sb, errB := Tokenization{Docs: mapped, Outcomes: outcomes}.Select(idx, 200, nil)
	if errA != nil || errB != nil || !reflect.DeepEqual(sa.Stats, sb.Stats) || sa.Stats.LabelTokens == 0 {
		t.Fatalf("counts differ: %+v (%v), %+v (%v)", sa.Stats, errA, sb.Stats, errB)
	}
	again := filepath.Join(dir, "again.tokens")
	if err := WriteCache(again, testKey(), mapped); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	got, _ := os.ReadFile(again)
	if !slices.Equal(want, got) {
		t.Error("a cache written from mapped documents differs")
	}
	// A mapped document whose mask is not its ids' length is refused,
	// as a labelled one is.
	bad := mapped[0]
	bad.Learnt = bad.Learnt[:len(bad.Learnt)-1]
	if _, _, err := Pack([]Tokenized{bad}, PackOptions{SeqLen: 1000}); err == nil {
		t.Error("packed a document with a short mask")
	}
}

// TestPackAndPadStopWhenCancelled: packing or padding a large corpus takes
// seconds; a cancelled context stops them with its error.
func TestPackAndPadStopWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	docs := randomDocs(50, 30, 3)
	if _, _, err := PackContext(ctx, docs, PackOptions{SeqLen: 64}); !errors.Is(err, context.Canceled) {
		t.Errorf("pack: %v", err)
	}
	if _, err := PadContext(ctx, docs, 64); !errors.Is(err, context.Canceled) {
		t.Errorf("pad: %v", err)
	}
}
