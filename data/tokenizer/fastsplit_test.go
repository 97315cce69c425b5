package tokenizer

import (
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// scannerAlphabet mixes every class the patterns distinguish, with the
// characters where Unicode categories and case folding are tricky.
// o200k's letter classes add titlecase (ǅ), modifier letters (ʰ, ー),
// other letters (中, ª), and marks after letters or alone (\u0301, \u0903
// a spacing mark, \u20dd an enclosing one).
var scannerAlphabet = []rune("aZé ſKİ\u0301'sStTrReEvVmMlLdD 09٣²½Ⅻ \t\n\r\v\f\u00a0\u2028\u3000\u0085!?.,;:-_/()[]{}\"'`~#$%^&*+=<>|\\🙂中한\u200b\u00ad\x00\x7fǅʰーªÉ\u0903\u20dd")

// scannerPatterns are the patterns with a hand-written scanner.
var scannerPatterns = []string{gpt2Split, cl100kSplit, qwenSplit, o200kSplit}

// scannerTexts pick out each alternative of the patterns and o200k's
// backtracking: U*W+ gives back U characters until W+ can start
// ("ABCdef" -> "AB" "Cdef"; "中文A" -> "中文" "A", Lo being in both
// classes), U+W* takes what U*W+ cannot ("ABC"), a mark is a leading P
// and a letter of both classes.
var scannerTexts = []string{
	"HelloWorld", "ABCdef", "ABC", "aBc", "ABC def", "ABCDEFghiJKL", "HTTPServer", "iPhone",
	"中文A b", "中文Abc", "中文ABC", "A中文", "ab中文CD", "日本語のテキストXML", "x中y", "中",
	"ǅa", "aǅ", "ǅǅ", "Aǅb", "ʰ", "Aʰ", "ʰA", "ABʰ", "aʰB", "ªB", "Bª", "ー",
	"e\u0301", "E\u0301", "E\u0301F", "\u0301", " \u0301", " \u0301a", "\u0301ABC", " \u0301ABC", "!\u0301ABC",
	"\u0301\u0301", "a \u0301\u0301 b", "A\u0903B", "\u20ddA", "1\u0301", "\n\u0301A",
	"don't", "DON'T", "Don'T", "we're", "WE'RE", "I'll", "I'LL", "they'Ve", "x'ſ", "'s", " 's", "'S'T", "a's's", "ABC's",
	"中文's", "ǅ'd", "a'", "a'l", "a'r", "A'Ll",
	"1", "12", "123", "1234", "12345", "123456", "1234567", "a1234b", "٣٣٣٣", "²½Ⅻ12",
	" !!!\n\n", "!!!\n\n/", "a/b\n/", "a/b\n/c", "x /\n\n/\r\n//y", " ?\r\n", ".../\n", "?/", " /", "  /",
	"   word", "word   ", "  \n  word", "\r\n", "a\r\nb", "\r\n\r\n ", "\t\tword", "\tWord", "\t!", "\t1",
	"\u0085a", "a\u0085\u0085b", "\u00a0a", "\u00a0\u00a0a", "\u2028A", "a\u2028\u2028", "\u3000中", " \u00a0 ",
	"a\u00a0\n b", "\v\fx", "\x00a", "\u200bA", "\u00adb",
}

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
	cases = append(cases, scannerTexts...)
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
	for _, src := range scannerPatterns {
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
	for _, s := range append(extraTexts, scannerTexts...) {
		f.Add(s)
	}
	res := map[string]*regex{}
	for _, src := range scannerPatterns {
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

// TestO200KClasses checks o200kClassOf on every rune against the category
// tables regexp2's \p{..} reads (unicode.Categories) and its \s
// (unicode.IsSpace).
func TestO200KClasses(t *testing.T) {
	in := func(cat string, r rune) bool { return unicode.Is(unicode.Categories[cat], r) }
	bad := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		var want o200kClass
		if in("Lu", r) || in("Lt", r) || in("Lm", r) || in("Lo", r) || in("M", r) {
			want |= oUpper
		}
		if in("Ll", r) || in("Lm", r) || in("Lo", r) || in("M", r) {
			want |= oLower
		}
		if in("L", r) {
			want |= oLetter
		}
		if in("N", r) {
			want |= oNumber
		}
		if unicode.IsSpace(r) {
			want |= oSpace
		}
		if r == '\r' || r == '\n' {
			want |= oNewline
		}
		got := o200kClassOf(r)
		if r < utf8.RuneSelf {
			got = asciiO200K[r]
		}
		if got != want {
			if bad++; bad <= 5 {
				t.Errorf("%U: classes %06b, want %06b", r, got, want)
			}
		}
	}
}
