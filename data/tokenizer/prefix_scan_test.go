package tokenizer

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestScannersSplitAtCut checks the pre-tokenizer step of prefix.go's
// argument on the scanners themselves: at every cut (an ASCII letter, then
// a space) the prefix's pieces are the text's pieces before the cut, and
// one of them ends at the cut. Texts mix the letters of o200k's
// overlapping classes, so that a search reads past the piece it finds
// ("中文A b": "中文" is decided at the space).
func TestScannersSplitAtCut(t *testing.T) {
	alphabet := append([]rune("aAbZ  中ǅʰª\u0301'sStTlL1/!\n\t"), scannerAlphabet...)
	r := rand.New(rand.NewPCG(7, 8))
	texts := append([]string{"中文A b", "ABC def", "中文ǅ x", "don'T x", "a'L x", "\u0301A b"}, scannerTexts...)
	for range 4000 {
		rs := make([]rune, 1+r.IntN(30))
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		texts = append(texts, string(rs))
	}
	for _, src := range scannerPatterns {
		scan := fastScanner(src)
		for _, s := range texts {
			whole := scan(s, nil)
			for c := 1; c < len(s); c++ {
				if s[c] != ' ' || !isASCIILetter(s[c-1]) {
					continue
				}
				var want [][2]int
				for _, p := range whole {
					if p[0] < c {
						want = append(want, p)
					}
				}
				if got := scan(s[:c], nil); !reflect.DeepEqual(got, want) || want[len(want)-1][1] != c {
					t.Fatalf("%.20s… on %q cut at %d:\nprefix %v\n whole %v", src, s, c, got, whole)
				}
			}
		}
	}
}
