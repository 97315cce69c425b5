package prep_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
)

// TestSplitLongText: under Overflow Split a plain-text example longer
// than MaxLen is tokenized whole (not through the bounded encoder, which
// would stop at MaxLen) and SplitLong cuts it into pieces of MaxLen that
// together are exactly the whole text's ids, packed and padded into rows
// that hold every piece; a conversation is still truncated. Under
// Truncate the same text keeps its first MaxLen tokens only.
func TestSplitLongText(t *testing.T) {
	tok, tmpl, eos := loadTinyBase(t)
	text := randomText(rand.New(rand.NewPCG(3, 4)), 20_000)
	enc0, err := tok.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	whole := append(enc0.IDs, eos)
	const maxLen = 256
	if len(whole) < 4*maxLen {
		t.Fatalf("the text is %d tokens: too short to split", len(whole))
	}
	long := format.Example{Text: text, Source: "doc.md:1"}
	conv := format.Example{Messages: []format.Message{{Role: "user", Content: "Say it."}, {Role: "assistant", Content: text}}, Source: "chat.jsonl:1"}
	short := format.Example{Text: "A short line.", Source: "doc.md:2"}
	enc := prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}} // bounded: Split must not use it
	p := &prep.Preprocessor{Enc: enc, Tmpl: chatRenderer(tmpl), EOS: eos, Opts: prep.Options{MaxLen: maxLen, Overflow: prep.Split}, Workers: 1}

	got, o, err := p.Tokenize(long)
	if err != nil || o != prep.Kept || !slices.Equal(got.IDs, toInt32(whole)) || !slices.Equal(got.Labels, got.IDs) {
		t.Fatalf("split text: outcome %v, %d ids, err %v; want the whole text's %d, all learnt", o, len(got.IDs), err, len(whole))
	}
	if c, o, err := p.Tokenize(conv); err != nil || o != prep.Truncated || len(c.IDs) != maxLen {
		t.Fatalf("a conversation under Split: outcome %v, %d ids, err %v; want truncated to %d", o, len(c.IDs), err, maxLen)
	}

	docs, st, err := p.TokenizeAll([]format.Example{short, long})
	if err != nil || st.Kept != 2 || st.Truncated != 0 {
		t.Fatalf("TokenizeAll: %+v, %v", st, err)
	}
	pieces, split, n := prep.SplitLong(docs, maxLen)
	wantPieces := (len(whole) + maxLen - 1) / maxLen
	if len(whole)%maxLen == 1 {
		wantPieces-- // a last piece of one token teaches nothing
	}
	if split != 1 || n != wantPieces || len(pieces) != 1+wantPieces {
		t.Fatalf("SplitLong: %d split into %d pieces, %d documents; want 1 into %d", split, n, len(pieces), wantPieces)
	}
	var joined []int32
	for i, d := range pieces[1:] {
		if len(d.IDs) > maxLen || len(d.IDs) < 2 || d.Source != long.Source {
			t.Fatalf("piece %d: %d tokens, source %q", i, len(d.IDs), d.Source)
		}
		joined = append(joined, d.IDs...)
	}
	if !slices.Equal(joined, toInt32(whole)[:len(joined)]) || len(whole)-len(joined) > 1 {
		t.Fatalf("the pieces hold %d of the text's %d ids, or not in order", len(joined), len(whole))
	}
	for _, pack := range []bool{true, false} {
		rows, _, err := p.Rows([]format.Example{short, long}, prep.RowOptions{Pack: pack, SeqLen: maxLen})
		if err != nil {
			t.Fatalf("rows (pack %v): %v", pack, err)
		}
		tokens := 0
		for _, r := range rows {
			tokens += len(r.InputIDs)
		}
		if want := len(docs[0].IDs) + len(joined); tokens != want {
			t.Fatalf("rows (pack %v) hold %d tokens, want %d (every piece)", pack, tokens, want)
		}
	}

	p.Opts.Overflow = prep.Truncate
	if tr, o, err := p.Tokenize(long); err != nil || o != prep.Truncated || !slices.Equal(tr.IDs, toInt32(whole[:maxLen])) {
		t.Fatalf("truncate: outcome %v, %d ids, err %v", o, len(tr.IDs), err)
	}
	if a, b := prep.OptionsHash(prep.Options{MaxLen: maxLen, Overflow: prep.Split}, eos), prep.OptionsHash(prep.Options{MaxLen: maxLen}, eos); a == b {
		t.Fatal("a token cache of split text and one of truncated text have one key")
	}
}

// TestSplitLongEdges: nothing longer than n leaves the documents as they
// are (the same slice); a document of n+1 tokens keeps its first n only,
// the last token being context of nothing; pieces share the document's
// arrays and cannot grow into the next piece.
func TestSplitLongEdges(t *testing.T) {
	doc := func(n int) prep.Tokenized {
		d := prep.Tokenized{IDs: make([]int32, n), Labels: make([]int32, n), Source: "d"}
		for i := range n {
			d.IDs[i], d.Labels[i] = int32(i), int32(i)
		}
		return d
	}
	docs := []prep.Tokenized{doc(3), doc(4)}
	if out, split, pieces := prep.SplitLong(docs, 4); &out[0] != &docs[0] || split != 0 || pieces != 0 {
		t.Fatalf("nothing to split: %d split, %d pieces, a new slice %v", split, pieces, &out[0] != &docs[0])
	}
	if out, _, _ := prep.SplitLong(docs, 0); len(out) != 2 {
		t.Fatal("n 0 splits")
	}
	out, split, pieces := prep.SplitLong([]prep.Tokenized{doc(5), doc(9)}, 4)
	if split != 2 || pieces != 3 || len(out) != 3 {
		t.Fatalf("5 and 9 tokens by 4: %d split into %d pieces (%d documents); want 2 into 3 (4 | 4, 4, and 1-token tails left out)", split, pieces, len(out))
	}
	if out[2].IDs[0] != 4 || len(out[2].IDs) != 4 {
		t.Fatalf("second piece of the 9-token document: %v", out[2].IDs)
	}
	grown := append(out[1].IDs, 99) // capacity is the piece's: the next piece is untouched
	if out[2].IDs[0] != 4 || len(grown) != 5 {
		t.Fatalf("appending to a piece wrote into the next: %v", out[2].IDs)
	}
}

// loadTinyBase loads tiny-base's tokenizer and chat template, and its EOS.
func loadTinyBase(t *testing.T) (*tokenizer.Tokenizer, *chat.Template, int) {
	t.Helper()
	tok, err := tokenizer.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	eos, ok := tok.EOS()
	if !ok {
		t.Fatal("tiny-base has no EOS")
	}
	return tok, tmpl, eos
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
