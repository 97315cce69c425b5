package prep

import (
	"fmt"
	"strings"

	"github.com/ftune/ftune/data/format"
)

// Fake tokenizer for tests: the three ChatML specials are single tokens,
// every other byte b is token 4+b; addSpecial prepends BOS (3).
const (
	fakeEOT      = 0 // <|endoftext|>
	fakeImStart  = 1
	fakeImEnd    = 2
	fakeBOS      = 3
	fakeByteBase = 4
)

var fakeSpecials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}

type byteEncoder struct{}

func (byteEncoder) Encode(text string, addSpecial bool) ([]int, error) {
	ids, _, err := byteOffsetEncoder{}.EncodeOffsets(text, addSpecial)
	return ids, err
}

// byteOffsetEncoder is the same tokenizer, with offsets.
type byteOffsetEncoder struct{ byteEncoder }

func (byteOffsetEncoder) EncodeOffsets(text string, addSpecial bool) ([]int, [][2]int, error) {
	var ids []int
	var offs [][2]int
	if addSpecial {
		ids, offs = append(ids, fakeBOS), append(offs, [2]int{0, 0})
	}
	for i := 0; i < len(text); {
		special := false
		for id, s := range fakeSpecials {
			if strings.HasPrefix(text[i:], s) {
				ids, offs = append(ids, id), append(offs, [2]int{i, i + len(s)})
				i += len(s)
				special = true
				break
			}
		}
		if !special {
			ids, offs = append(ids, fakeByteBase+int(text[i])), append(offs, [2]int{i, i + 1})
			i++
		}
	}
	return ids, offs, nil
}

func fakeDecode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id < fakeByteBase {
			if id == fakeBOS {
				b.WriteString("<s>")
			} else {
				b.WriteString(fakeSpecials[id])
			}
			continue
		}
		b.WriteByte(byte(id - fakeByteBase))
	}
	return b.String()
}

// chatML renders like the tiny-base template. end is written after each
// assistant turn instead of "<|im_end|>\n" when set (to test templates
// that close turns with EOS); dropHistory rewrites earlier assistant turns
// as Qwen3's template does with <think> blocks.
type chatML struct {
	end         string
	dropHistory bool
	thinkLast   bool // an empty think block before the last assistant turn, as Qwen3
}

func (c chatML) Render(msgs []format.Message, gen bool) (string, error) {
	var b strings.Builder
	for i, m := range msgs {
		content := m.Content
		if c.dropHistory && m.Role == format.RoleAssistant && i < len(msgs)-1 {
			content = "[earlier]"
		}
		if c.thinkLast && m.Role == format.RoleAssistant && i == len(msgs)-1 {
			content = "<think>\n\n</think>\n\n" + content
		}
		end := "<|im_end|>\n"
		if c.end != "" && m.Role == format.RoleAssistant {
			end = c.end
		}
		fmt.Fprintf(&b, "<|im_start|>%s\n%s%s", m.Role, content, end)
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

func msgs(pairs ...string) []format.Message {
	var m []format.Message
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, format.Message{Role: pairs[i], Content: pairs[i+1]})
	}
	return m
}
