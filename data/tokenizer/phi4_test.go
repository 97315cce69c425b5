package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/testutil"
)

// phi4Dir holds Phi-4-mini's real tokenizer (o200k-style Split pattern,
// scanned by scanO200K).
const phi4Dir = "../../testdata/tokenizers/phi4-mini"

func loadPhi4(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := Load(testutil.Inflate(tb, phi4Dir))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// withoutScanners makes t run regexp2 for its Split patterns, as it did
// before the hand-written scanners, and so never cut prefixes.
func withoutScanners(t *Tokenizer) {
	var walk func(p preTokenizer)
	walk = func(p preTokenizer) {
		switch p := p.(type) {
		case seqPre:
			for _, x := range p {
				walk(x)
			}
		case splitPre:
			if re, ok := p.m.(*regex); ok {
				re.fast = nil
			}
		case byteLevelPre:
			if p.re != nil {
				p.re.fast = nil
			}
		}
	}
	walk(t.pre)
	t.cuts = t.canCut()
}

// mixedText is about 3n bytes: n of English prose (the quiz corpus), n of
// Go source (this package's), n of CJK with ASCII and punctuation mixed in.
func mixedText(tb testing.TB, n int) string {
	tb.Helper()
	quiz, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		tb.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		tb.Fatal(err)
	}
	var code []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		code = append(code, b...)
	}
	r := rand.New(rand.NewPCG(5, 6))
	cjk := []string{"中文", "字符", "日本語の", "テキスト", "。", "，", "한국어", "텍스트", "、", "世界", "今天天气很好", "Go ", "API", "2024年", "「引用」", "\n"}
	var sb strings.Builder
	for sb.Len() < n {
		sb.Write(quiz)
	}
	for sb.Len() < 2*n {
		sb.Write(code)
	}
	for sb.Len() < 3*n {
		sb.WriteString(cjk[r.IntN(len(cjk))])
	}
	return sb.String()
}

// TestPhi4ScannerEncodeMatchesRegexp2: Phi-4-mini encodes real text of
// every kind to the same ids with its scanner as with regexp2.
func TestPhi4ScannerEncodeMatchesRegexp2(t *testing.T) {
	fast, slow := loadPhi4(t), loadPhi4(t)
	withoutScanners(slow)
	var golden []string
	data, err := os.ReadFile(filepath.Join(phi4Dir, "../gen/texts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	mixed := mixedText(t, 100<<10)
	texts := append(append(golden, extraTexts...), mixed)
	for _, line := range strings.Split(mixed, "\n") {
		texts = append(texts, line)
	}
	for _, s := range texts {
		want, err := slow.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fast.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.IDs, want.IDs) {
			t.Fatalf("%.60q: ids differ from regexp2's:\n got %v\nwant %v", s, got.IDs[:min(len(got.IDs), 40)], want.IDs[:min(len(want.IDs), 40)])
		}
	}
}

// BenchmarkPhi4Encode: Phi-4-mini's Encode on 3 MB of English, code and
// CJK, with its scanner and with regexp2.
func BenchmarkPhi4Encode(b *testing.B) {
	text := mixedText(b, 1<<20)
	for _, mode := range []string{"scanner", "regexp2"} {
		b.Run(mode, func(b *testing.B) {
			tok := loadPhi4(b)
			if mode == "regexp2" {
				withoutScanners(tok)
			}
			if _, err := tok.Encode(text, false); err != nil { // warm the word cache
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := tok.Encode(text, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(text)), "ns/byte")
		})
	}
}

// BenchmarkO200KSplit: o200k's pattern alone on the same text, scanner
// and regexp2.
func BenchmarkO200KSplit(b *testing.B) {
	text := mixedText(b, 1<<20)
	re, err := compileRegex(o200kSplit)
	if err != nil {
		b.Fatal(err)
	}
	n := len(text) / 3
	for _, part := range []struct{ name, text string }{
		{"english", text[:n]}, {"code", text[n : 2*n]}, {"cjk", strings.ToValidUTF8(text[2*n:], "")}, {"all", text},
	} {
		b.Run(part.name+"/scanner", func(b *testing.B) {
			b.SetBytes(int64(len(part.text)))
			for b.Loop() {
				re.fast(part.text, nil)
			}
		})
		b.Run(part.name+"/regexp2", func(b *testing.B) {
			b.SetBytes(int64(len(part.text)))
			for b.Loop() {
				if _, err := re.findSlow(part.text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPhi4EncodePrefix: the first 256 tokens of a 16 MiB record, cut
// (scanner) and whole (regexp2). peak-MB is the most heap in use during a
// call above what was in use before it, sampled every millisecond.
func BenchmarkPhi4EncodePrefix(b *testing.B) {
	chunk := mixedText(b, 1<<20)
	text := strings.Repeat(chunk, (16<<20)/len(chunk)+1)[:16<<20]
	text = strings.ToValidUTF8(text, "") // the cut may split a character
	for _, mode := range []string{"scanner", "regexp2"} {
		b.Run(mode, func(b *testing.B) {
			tok := loadPhi4(b)
			if mode == "regexp2" {
				withoutScanners(tok)
			}
			b.ReportAllocs()
			var peak uint64
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				base, top := m.HeapAlloc, m.HeapAlloc
				b.StartTimer()
				done := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					for {
						select {
						case <-done:
							return
						case <-time.After(time.Millisecond):
						}
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						top = max(top, m.HeapAlloc)
					}
				}()
				enc, err := tok.EncodePrefix(text, false, 256)
				close(done)
				<-sampled
				if err != nil {
					b.Fatal(err)
				}
				if len(enc.IDs) <= 256 {
					b.Fatalf("%d tokens", len(enc.IDs))
				}
				peak = max(peak, top-base)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		})
	}
}
