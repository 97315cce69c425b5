package prep

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// randomDocs makes n documents of 1..maxLen tokens with random ids and a
// mix of learnt and ignored labels; the source names the document.
func randomDocs(n, maxLen int, seed uint64) []Tokenized {
	r := NewRand(seed)
	docs := make([]Tokenized, n)
	for i := range docs {
		l := 1 + r.Intn(maxLen)
		d := Tokenized{IDs: make([]int32, l), Labels: make([]int32, l), Source: fmt.Sprint("doc", i), Subject: i % 3}
		prompt := r.Intn(l)
		for j := range d.IDs {
			d.IDs[j] = int32(4 + r.Intn(100))
			d.Labels[j] = IgnoreIndex
			if j >= prompt {
				d.Labels[j] = d.IDs[j]
			}
		}
		docs[i] = d
	}
	return docs
}

// checkRows verifies the row invariants (real tokens only, at most seqLen
// of them when seqLen > 0; documents from position 0, their first label
// ignored) and returns, per document found, its ids and labels in row
// order.
func checkRows(t *testing.T, rows []Row, seqLen int) (ids, labels [][]int32) {
	t.Helper()
	for ri, r := range rows {
		if len(r.Learnt) != len(r.InputIDs) || len(r.InputIDs) == 0 || (seqLen > 0 && len(r.InputIDs) > seqLen) {
			t.Fatalf("row %d: %d ids and %d learnt flags, row length %d", ri, len(r.InputIDs), len(r.Learnt), seqLen)
		}
		if r.Docs > 1 && len(r.Starts) != r.Docs || r.Docs == 1 && r.Starts != nil {
			t.Fatalf("row %d: %d documents, starts %v", ri, r.Docs, r.Starts)
		}
		pos, segs := r.Layout()
		docs := 0
		for j := range r.InputIDs {
			seg := segs[j]
			start := j == 0 || segs[j-1] != seg
			if start {
				if int(seg) != docs {
					t.Fatalf("row %d pos %d: segment %d, want %d", ri, j, seg, docs)
				}
				docs++
				if pos[j] != 0 {
					t.Fatalf("row %d pos %d: position %d at a document start", ri, j, pos[j])
				}
				// Labels are shifted in the model: this label would be
				// predicted from the previous document's last token.
				if r.Learnt[j] {
					t.Fatalf("row %d pos %d: document starts with a learnt label", ri, j)
				}
				ids, labels = append(ids, nil), append(labels, nil)
			} else if pos[j] != pos[j-1]+1 {
				t.Fatalf("row %d pos %d: positions do not increase", ri, j)
			}
			ids[len(ids)-1] = append(ids[len(ids)-1], r.InputIDs[j])
			labels[len(labels)-1] = append(labels[len(labels)-1], r.Label(j))
		}
		if docs != r.Docs {
			t.Fatalf("row %d: %d documents, Docs says %d", ri, docs, r.Docs)
		}
	}
	return ids, labels
}

// startIgnored is d's labels with the first ignored, as rows lay them out.
func startIgnored(d Tokenized) []int32 {
	l := slices.Clone(d.Labels)
	l[0] = IgnoreIndex
	return l
}

func TestPackInvariants(t *testing.T) {
	docs := randomDocs(200, 40, 1)
	for _, tc := range []struct {
		name     string
		strategy PackStrategy
		seqLen   int
	}{{"sequential 64", PackSequential, 64}, {"sequential 40", PackSequential, 40}, {"ffd 64", PackFirstFitDecreasing, 64}, {"ffd 97", PackFirstFitDecreasing, 97}} {
		t.Run(tc.name, func(t *testing.T) {
			rows, st, err := Pack(docs, PackOptions{SeqLen: tc.seqLen, Strategy: tc.strategy})
			if err != nil {
				t.Fatal(err)
			}
			ids, labels := checkRows(t, rows, tc.seqLen)
			// Every document appears exactly once, whole.
			var want, got []string
			for _, d := range docs {
				want = append(want, fmt.Sprint(d.IDs, startIgnored(d)))
			}
			for i := range ids {
				got = append(got, fmt.Sprint(ids[i], labels[i]))
			}
			if tc.strategy == PackSequential {
				if !reflect.DeepEqual(got, want) {
					t.Fatal("sequential packing changed the documents or their order")
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatal("packed documents differ from the input")
			}
			if st.Rows != len(rows) || st.Docs != len(docs) || (st.Tokens+st.PadTokens) != len(rows)*tc.seqLen {
				t.Errorf("stats %+v", st)
			}
			t.Logf("%d rows, efficiency %.3f", st.Rows, st.Efficiency())
		})
	}
}

func TestFFDPacksTighter(t *testing.T) {
	docs := randomDocs(300, 60, 2)
	seq, _, _ := Pack(docs, PackOptions{SeqLen: 64})
	ffd, _, _ := Pack(docs, PackOptions{SeqLen: 64, Strategy: PackFirstFitDecreasing})
	if len(ffd) > len(seq) {
		t.Errorf("first-fit decreasing made %d rows, sequential %d", len(ffd), len(seq))
	}
}

// contexts lists, for every learnt target, what a model restricted to
// its segment sees: the earlier tokens of the document with their position
// ids, and the target. Packed and padded rows must give the same multiset,
// which is what makes their losses equal.
func contexts(rows []Row) []string {
	var out []string
	for _, r := range rows {
		pos, seg := r.Layout()
		for t := 0; t+1 < len(r.InputIDs); t++ {
			if !r.Learnt[t+1] || seg[t+1] != seg[t] {
				continue
			}
			var b strings.Builder
			for j := 0; j <= t; j++ {
				if seg[j] == seg[t] {
					fmt.Fprintf(&b, "%d@%d ", r.InputIDs[j], pos[j])
				}
			}
			fmt.Fprintf(&b, "-> %d", r.Label(t+1))
			out = append(out, b.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestPackedAndPaddedHaveTheSameTargets(t *testing.T) {
	docs := randomDocs(60, 30, 3)
	packed, _, err := Pack(docs, PackOptions{SeqLen: 48, Strategy: PackFirstFitDecreasing})
	if err != nil {
		t.Fatal(err)
	}
	padded, err := Pad(docs, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, padded, 0)
	if len(padded) != len(docs) || len(packed) >= len(docs) {
		t.Fatalf("%d padded rows, %d packed rows for %d documents", len(padded), len(packed), len(docs))
	}
	if a, b := Targets(packed), Targets(padded); a != b {
		t.Fatalf("targets: packed %d, padded %d", a, b)
	}
	// Each document's learnt tokens, except its first, are targets.
	want := 0
	for _, d := range docs {
		for _, l := range d.Labels[1:] {
			if l != IgnoreIndex {
				want++
			}
		}
	}
	if Targets(padded) != want {
		t.Fatalf("targets %d, want %d", Targets(padded), want)
	}
	if !reflect.DeepEqual(contexts(packed), contexts(padded)) {
		t.Fatal("packed rows let a target see another context than padded rows")
	}
}

func TestPackErrors(t *testing.T) {
	docs := randomDocs(3, 10, 4)
	long := Tokenized{IDs: make([]int32, 20), Labels: make([]int32, 20), Source: "f.jsonl:9"}
	bad := Tokenized{IDs: make([]int32, 2), Labels: make([]int32, 1), Source: "f.jsonl:3"}
	for _, tc := range []struct {
		name string
		docs []Tokenized
		opts PackOptions
		want string
	}{
		{"too long", append(docs, long), PackOptions{SeqLen: 16}, "f.jsonl:9) has 20 tokens, more than the row length 16"},
		{"label count", append(docs, bad), PackOptions{SeqLen: 16}, "2 ids and 1 labels"},
		{"foreign label", append(docs, Tokenized{IDs: []int32{5, 6}, Labels: []int32{IgnoreIndex, 7}, Source: "f.jsonl:4"}), PackOptions{SeqLen: 16}, "(f.jsonl:4): token 1's label 7 is neither its id 6 nor IgnoreIndex"},
		{"zero length", docs, PackOptions{}, "row length 0"},
	} {
		if _, _, err := Pack(tc.docs, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Pad(append(docs, long), 16); err == nil {
		t.Error("Pad accepted a document longer than the row")
	}
}

func TestPackSubject(t *testing.T) {
	docs := randomDocs(6, 5, 5)
	for i := range docs {
		docs[i].Subject = 7
	}
	rows, _, _ := Pack(docs, PackOptions{SeqLen: 30})
	for _, r := range rows {
		if r.Subject != 7 {
			t.Errorf("row subject %d, want 7", r.Subject)
		}
	}
	docs[1].Subject = 2
	rows, _, _ = Pack(docs, PackOptions{SeqLen: 1000})
	if len(rows) != 1 || rows[0].Subject != -1 {
		t.Errorf("mixed row subject %d, want -1", rows[0].Subject)
	}
}
