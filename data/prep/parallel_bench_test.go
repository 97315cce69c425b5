package prep_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// BenchmarkTokenizeAll: chats of a few hundred words (a user question of
// 30-120, an answer of 150-450) with the tiny-base tokenizer and
// template, on one worker (the serial loop) and on GOMAXPROCS.
//
//	go test ./data/prep -run - -bench TokenizeAll -benchtime 3x
func BenchmarkTokenizeAll(b *testing.B) {
	tok, eos := tinyTokenizer(b)
	tmpl, err := chat.Load(tinyBase)
	if err != nil {
		b.Fatal(err)
	}
	text := randomWords(rand.New(rand.NewPCG(1, 2)))
	r := rand.New(rand.NewPCG(3, 4))
	exs := make([]format.Example, 2000)
	size := 0
	for i := range exs {
		exs[i] = format.Example{Source: fmt.Sprint(i), Messages: []format.Message{
			{Role: format.RoleUser, Content: text(30 + r.IntN(90))}, {Role: format.RoleAssistant, Content: text(150 + r.IntN(300))}}}
		size += len(exs[i].Messages[0].Content) + len(exs[i].Messages[1].Content)
	}
	// Warm the tokenizer's word cache, which the first run would fill.
	warm := &prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, Tmpl: ctxRenderer(tmpl), EOS: eos, Opts: prep.Options{MaxLen: 1024}}
	if _, _, err := warm.TokenizeAll(exs); err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			p := &prep.Preprocessor{Enc: prefixEncoder{byteOffsetEncoder{hfEncoder{tok}}}, Tmpl: ctxRenderer(tmpl), EOS: eos, Opts: prep.Options{MaxLen: 1024}, Workers: w}
			b.SetBytes(int64(size))
			cpu0 := cpuTime()
			for b.Loop() {
				if _, _, err := p.TokenizeAll(exs); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time beside wall time: on a loaded machine the workers
			// get less than a core each, and the CPU per example says
			// whether spreading them cost work.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
