package tokenizer

import (
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
)

// scannerAlphabet mixes every class the patterns distinguish, with the
// characters where Unicode categories and case folding are tricky.
var scannerAlphabet = []rune("aZé ſKİ\u0301'sStTrReEvVmMlLdD 09٣²½Ⅻ \t\n\r\v\f\u00a0\u2028\u3000\u0085!?.,;:-_/()[]{}\"'`~#$%^&*+=<>|\\🙂中한\u200b\u00ad\x00\x7f")

func randomText(r *rand.Rand, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteRune(scannerAlphabet[r.IntN(len(scannerAlphabet))])
	}
	return sb.String()
}

func scannerCases(t testing.TB) []string {
	corpus, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := append(strings.Split(string(corpus), "\n"), string(corpus))
	cases = append(cases, extraTexts...)
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 3000 {
		cases = append(cases, randomText(r, 1+n%40))
	}
	return cases
}

// TestScannersMatchRegexp2 checks each hand-written scanner against regexp2
// running the pattern it replaces.
func TestScannersMatchRegexp2(t *testing.T) {
	cases := scannerCases(t)
	for _, src := range []string{gpt2Split, cl100kSplit, qwenSplit} {
		re, err := compileRegex(src)
		if err != nil {
			t.Fatal(err)
		}
		if re.fast == nil {
			t.Fatalf("no scanner for %q", src)
		}
		bad := 0
		for _, s := range cases {
			want, err := re.findSlow(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := re.fast(s, nil); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				if bad++; bad <= 5 {
					t.Errorf("%.20s… on %q:\n got %v\nwant %v", src, s, got, want)
				}
			}
		}
	}
}

// FuzzScanners compares the scanners with regexp2 on arbitrary text.
func FuzzScanners(f *testing.F) {
	for _, s := range extraTexts {
		f.Add(s)
	}
	res := map[string]*regex{}
	for _, src := range []string{gpt2Split, cl100kSplit, qwenSplit} {
		re, err := compileRegex(src)
		if err != nil {
			f.Fatal(err)
		}
		res[src] = re
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isValid(s) {
			return // Encode rejects invalid UTF-8 before any pre-tokenizer runs
		}
		for src, re := range res {
			want, err := re.findSlow(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := re.fast(s, nil); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%.20s… on %q:\n got %v\nwant %v", src, s, got, want)
			}
		}
	})
}
