package tokenizer

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/testutil"
)

// benchTokenizers are the tokenizer kinds BenchmarkEncode measures.
var benchTokenizers = []struct {
	name string
	load func(tb testing.TB) (*Tokenizer, error)
}{
	{"qwen3", func(tb testing.TB) (*Tokenizer, error) { return Load(testutil.Inflate(tb, "testdata/qwen3")) }}, // byte-level BPE, Split regex with look-ahead
	{"tiny-base", func(testing.TB) (*Tokenizer, error) { return Load("testdata/tiny-base") }},                  // GPT-2 style ByteLevel
	{"sp-bpe", func(testing.TB) (*Tokenizer, error) { return Load("testdata/sp-bpe") }},                        // SentencePiece style, byte fallback
	{"sp-metaspace", func(testing.TB) (*Tokenizer, error) { return Load("testdata/sp-metaspace") }},            // Metaspace pre-tokenizer
	{"tiktoken-cl100k", func(testing.TB) (*Tokenizer, error) { return Tiktoken("cl100k_base") }},
}

// BenchmarkEncode reports encode throughput (MB/s of UTF-8 input) on the
// quiz corpus, once as a whole document and once line by line (how
// datasets arrive: many short examples).
func BenchmarkEncode(b *testing.B) {
	corpus, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(corpus)
	lines := strings.Split(text, "\n")
	for _, bt := range benchTokenizers {
		var tok *Tokenizer
		load := func(b *testing.B) {
			if tok != nil {
				return
			}
			var err error
			if tok, err = bt.load(b); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(bt.name+"/document", func(b *testing.B) {
			load(b)
			b.SetBytes(int64(len(text)))
			cpu := processCPU()
			for b.Loop() {
				if _, err := tok.Encode(text, false); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu, len(text))
		})
		b.Run(bt.name+"/lines", func(b *testing.B) {
			load(b)
			b.SetBytes(int64(len(text)))
			cpu := processCPU()
			for b.Loop() {
				for _, l := range lines {
					if _, err := tok.Encode(l, true); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu, len(text))
		})
	}
}

// reportCPU adds MB per CPU second (see processCPU), GC included.
func reportCPU(b *testing.B, start time.Duration, bytes int) {
	if used := processCPU() - start; used > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/used.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkPreTokenize compares the hand-written scanners with regexp2 on
// the patterns they replace.
func BenchmarkPreTokenize(b *testing.B) {
	corpus, err := os.ReadFile("testdata/corpus/quiz.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(corpus)
	for _, p := range []struct{ name, src string }{
		{"gpt2", gpt2Split}, {"cl100k", cl100kSplit}, {"qwen", qwenSplit},
	} {
		re, err := compileRegex(p.src)
		if err != nil {
			b.Fatal(err)
		}
		if re.fast != nil {
			b.Run(p.name+"/scanner", func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				for b.Loop() {
					re.fast(text, nil)
				}
			})
		}
		b.Run(p.name+"/regexp2", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := re.findSlow(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
