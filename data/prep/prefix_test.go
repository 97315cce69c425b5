package prep_test

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
)

// byteOffsetEncoder is recipe's adapter: byte offsets from EncodeOffsets.
type byteOffsetEncoder struct{ hfEncoder }

func (e byteOffsetEncoder) EncodeOffsets(s string, add bool) ([]int, [][2]int, error) {
	return e.t.EncodeOffsets(s, add)
}

// prefixEncoder adds the bounded methods (prep.PrefixOffsetEncoder).
type prefixEncoder struct{ byteOffsetEncoder }

func (e prefixEncoder) EncodePrefix(s string, add bool, n int) ([]int, error) {
	enc, err := e.t.EncodePrefix(s, add, n)
	return enc.IDs, err
}

func (e prefixEncoder) EncodeOffsetsPrefix(s string, add bool, n int) ([]int, [][2]int, error) {
	return e.t.EncodeOffsetsPrefix(s, add, n)
}

// prefixSegEncoder is a PrefixEncoder without offsets (encodeSegments).
type prefixSegEncoder struct{ hfEncoder }

func (e prefixSegEncoder) EncodePrefix(s string, add bool, n int) ([]int, error) {
	enc, err := e.t.EncodePrefix(s, add, n)
	return enc.IDs, err
}

func randomText(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz ,.!?0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// TestPrefixEncoderSameExamples: with MaxLen set, a PrefixEncoder gives
// exactly the examples, labels and counts of encoding whole texts, for
// completions and chats, truncated and dropped.
func TestPrefixEncoderSameExamples(t *testing.T) {
	tok, tmpl, eos := loadTinyBase(t)
	r := rand.New(rand.NewPCG(5, 6))
	var exs []format.Example
	for i, n := range []int{10, 100, 1000, 20000} {
		long := randomText(r, n)
		prose := strings.Repeat("The quick brown fox jumps over the lazy dog. ", n/40+1)
		exs = append(exs,
			format.Example{Text: long, Source: "text" + string(rune('a'+i))},
			format.Example{Text: prose, Source: "prose" + string(rune('a'+i))},
			format.Example{Source: "chat" + string(rune('a'+i)), Messages: []format.Message{
				{Role: format.RoleUser, Content: prose[:n/2+1]},
				{Role: format.RoleAssistant, Content: long},
			}},
			format.Example{Source: "multi" + string(rune('a'+i)), Messages: []format.Message{
				{Role: format.RoleUser, Content: "q"},
				{Role: format.RoleAssistant, Content: prose[:n/3+1]},
				{Role: format.RoleUser, Content: long},
				{Role: format.RoleAssistant, Content: "short answer"},
			}},
		)
	}
	for _, maxLen := range []int{8, 64, 256, 3000} {
		for _, over := range []prep.Overflow{prep.Truncate, prep.Drop} {
			opts := prep.Options{MaxLen: maxLen, Overflow: over}
			mk := func(e prep.Encoder) *prep.Preprocessor {
				return &prep.Preprocessor{Enc: e, Tmpl: chatRenderer(tmpl), EOS: eos, Opts: opts}
			}
			want, wantSt, err := mk(byteOffsetEncoder{hfEncoder{tok}}).TokenizeAll(exs)
			if err != nil {
				t.Fatal(err)
			}
			for name, e := range map[string]prep.Encoder{
				"offsets":  prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}},
				"segments": prefixSegEncoder{hfEncoder{tok}},
			} {
				got, gotSt, err := mk(e).TokenizeAll(exs)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotSt, wantSt) {
					t.Fatalf("%s, MaxLen %d, overflow %v: examples or stats differ (%+v, want %+v)", name, maxLen, over, gotSt, wantSt)
				}
			}
		}
	}
}

// TestPrefixEncoderBounded: a 16 MB record truncated to 256 tokens costs
// memory for the tokens kept, not for the record (before: over 2 GB).
func TestPrefixEncoderBounded(t *testing.T) {
	tok, err := tokenizer.Load(tinyBase)
	if err != nil {
		t.Fatal(err)
	}
	eos, _ := tok.EOS()
	text := randomText(rand.New(rand.NewPCG(7, 8)), 16<<20)
	p := &prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, EOS: eos, Opts: prep.Options{MaxLen: 256}}
	ex := format.Example{Text: text, Source: "big"}
	if _, _, err := p.Tokenize(ex); err != nil { // warm the word cache
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, o, err := p.Tokenize(ex)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if o != prep.Truncated || len(got.IDs) != 256 {
		t.Fatalf("outcome %v, %d tokens", o, len(got.IDs))
	}
	_, offs, _ := tok.EncodeOffsets(text[:4096], true)
	kept := offs[255][1]
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("256 tokens (%d bytes of text): %d bytes allocated", kept, alloc)
	if alloc > uint64(128*kept) {
		t.Fatalf("allocated %d bytes to keep 256 tokens (%d bytes of a %d-byte record): want under %d", alloc, kept, len(text), 128*kept)
	}
}
