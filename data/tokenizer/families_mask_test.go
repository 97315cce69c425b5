package tokenizer_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
)

// TestFamilyAssistantMasking runs each family's real template through
// data/prep's labelling (what is trained) on the golden conversations that
// end with an assistant turn, the way recipe/text.go wires it (an Encoder
// without offsets, the template's rendering), and checks that the learnt
// tokens are the assistant answers: each learnt run decodes to text that
// holds the next answer's final text, one run per answer, and the ids are
// those of the whole rendering (plus EOS).
func TestFamilyAssistantMasking(t *testing.T) {
	type famCase struct{ family, tokFrom string }
	for _, fc := range []famCase{{"qwen3", "qwen3"}, {"gemma3", "gemma3"}, {"gemma2", "gemma2"}, {"phi4-mini", "phi4-mini"}, {"phi3", "phi3"}} {
		t.Run(fc.family, func(t *testing.T) {
			dir := filepath.Join(familiesRoot, fc.family)
			var golden struct {
				BOS   string           `json:"bos_token"`
				EOS   string           `json:"eos_token"`
				Cases []familyChatCase `json:"cases"`
			}
			if !readJSON(t, filepath.Join(dir, "chat_golden.json"), &golden) {
				t.Fatalf("%s: no chat_golden.json", dir)
			}
			tpl, _ := familyTemplate(t, dir, golden.BOS, golden.EOS)
			tok := loadFamilyTokenizer(t, filepath.Join(familiesRoot, fc.tokFrom))
			eos, ok := tok.TokenToID(golden.EOS)
			if !ok {
				t.Fatalf("eos %q not in the tokenizer", golden.EOS)
			}
			segments := prep.EncoderFunc(func(s string, special bool) ([]int, error) {
				e, err := tok.Encode(s, special)
				return e.IDs, err
			})
			p := &prep.Preprocessor{
				Enc: segments,
				Tmpl: prep.ContextRenderFunc(func(ctx context.Context, msgs []format.Message, gen bool) (string, error) {
					cm := make([]chat.Message, len(msgs))
					for i, m := range msgs {
						cm[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
					}
					return tpl.RenderContext(ctx, cm, gen)
				}),
				EOS: eos,
			}
			n := 0
			for _, c := range golden.Cases {
				last := c.Messages[len(c.Messages)-1]
				if c.Error != "" || last.Role != "assistant" || c.Kwargs != nil {
					continue
				}
				n++
				key := fc.family + "/" + c.Name
				if dropsToolMessages[key] {
					t.Run(c.Name, func(t *testing.T) { checkToolTurnRefused(t, p, c) })
					continue
				}
				t.Run(c.Name, func(t *testing.T) { checkMasking(t, p, tok, c, exactRuns[key], segmentIDsDiffer[key]) })
				// With byte offsets prep labels the whole rendering's
				// tokens: every case's ids are the rendering's.
				withOffsets := *p
				withOffsets.Enc = offsetEncoder{segments, tok}
				t.Run(c.Name+"/offsets", func(t *testing.T) { checkMasking(t, &withOffsets, tok, c, exactRuns[key], false) })
			}
			if n < 5 {
				t.Fatalf("only %d conversations ending with an assistant turn", n)
			}
		})
	}
	for key := range exactRuns {
		family, name, _ := strings.Cut(key, "/")
		t.Run(family+"/"+name+"/exact-runs-listed", func(t *testing.T) {
			var golden struct {
				Cases []familyChatCase `json:"cases"`
			}
			readJSON(t, filepath.Join(familiesRoot, family, "chat_golden.json"), &golden)
			for _, c := range golden.Cases {
				if c.Name == name {
					return
				}
			}
			t.Errorf("exactRuns lists %s, which is no golden case", key)
		})
	}
}

// offsetEncoder gives prep the tokenizer's byte offsets (prep.OffsetEncoder).
type offsetEncoder struct {
	prep.EncoderFunc
	tok *tokenizer.Tokenizer
}

func (e offsetEncoder) EncodeOffsets(text string, special bool) ([]int, [][2]int, error) {
	return e.tok.EncodeOffsets(text, special)
}

// exactRuns are the learnt text of the conversations whose template
// rewrites the answers: Qwen3's drops the <think> block of an assistant
// turn once a later user turn follows (from the content's <think> block or
// from reasoning_content alike), so the earlier answers are learnt as the
// rendering holds them, without their thinking, and the last one with it.
// These were refused (ErrNotPrefixStable) before prep found the answers in
// the whole rendering.
var exactRuns = map[string][]string{
	"qwen3/think-history":     {"4<|im_end|>\n", "<think>\nAgain.\n</think>\n\n6<|im_end|>\n"},
	"qwen3/reasoning-content": {"4<|im_end|>\n", "<think>\nThree plus three.\n</think>\n\n6<|im_end|>\n"},
	"qwen3/think-last":        {"<think>\nAdd two and two.\n</think>\n\n4<|im_end|>\n"},
}

// segmentIDsDiffer are the conversations whose trained ids are not those
// of the whole rendering when prep gets an Encoder without offsets
// (recipe/text.go gives it offsets, so the run trains on the /offsets ids): prep then encodes the text before, inside
// and after each answer separately. Phi-3's <|assistant|> strips the
// whitespace after it (rstrip), which in the whole rendering takes the
// answer's own leading whitespace too; encoded alone, the answer keeps it
// (and SentencePiece's prepended "▁"). With offsets (offsetEncoder) the
// ids are the rendering's.
var segmentIDsDiffer = map[string]bool{"phi3/whitespace": true}

// dropsToolMessages are the cases whose template writes nothing of a
// tool message (Phi-3's: the golden rendering has no tool turn), which
// prep refuses rather than learn the answer after it without it.
var dropsToolMessages = map[string]bool{"phi3/tool-turn": true}

func checkToolTurnRefused(t *testing.T, p *prep.Preprocessor, c familyChatCase) {
	msgs := make([]format.Message, len(c.Messages))
	for i, m := range c.Messages {
		msgs[i] = format.Message{Role: m.Role, Content: m.Content}
		if m.Role == "tool" && (c.Text == nil || strings.Contains(*c.Text, m.Content)) {
			t.Fatalf("the golden rendering holds the tool's result %q", m.Content)
		}
	}
	if _, _, err := p.Tokenize(format.Example{Messages: msgs, Source: c.Name}); !errors.Is(err, prep.ErrNoToolSupport) {
		t.Fatalf("a template that drops tool messages: got %v, want ErrNoToolSupport", err)
	}
}

func checkMasking(t *testing.T, p *prep.Preprocessor, tok *tokenizer.Tokenizer, c familyChatCase, exact []string, idsDiffer bool) {
	msgs := make([]format.Message, len(c.Messages))
	var answers []string
	for i, m := range c.Messages {
		msgs[i] = format.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
		if m.Role == "assistant" {
			// The part after a <think> block, trimmed: what every template
			// keeps of an answer.
			a := m.Content
			if j := strings.LastIndex(a, "</think>"); j >= 0 {
				a = a[j+len("</think>"):]
			}
			answers = append(answers, strings.TrimSpace(a))
		}
	}
	got, outcome, err := p.Tokenize(format.Example{Messages: msgs, Source: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	if outcome != prep.Kept {
		t.Fatalf("outcome %v", outcome)
	}
	var runs []string
	var cur []int
	flush := func() {
		if len(cur) > 0 {
			s, err := tok.Decode(cur, false)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, s)
			cur = nil
		}
	}
	for j, l := range got.Labels {
		if l == prep.IgnoreIndex {
			flush()
			continue
		}
		cur = append(cur, int(got.IDs[j]))
	}
	flush()
	var nonEmpty []string
	for _, a := range answers {
		if a != "" {
			nonEmpty = append(nonEmpty, a)
		}
	}
	if len(runs) < len(nonEmpty) {
		t.Fatalf("%d learnt runs %q for %d answers %q", len(runs), runs, len(nonEmpty), nonEmpty)
	}
	k := 0
	for _, r := range runs {
		if k < len(nonEmpty) && strings.Contains(r, nonEmpty[k]) {
			k++
		}
	}
	if k != len(nonEmpty) {
		t.Errorf("learnt runs %q do not hold the answers %q in order", runs, nonEmpty)
	}
	if exact != nil && !reflect.DeepEqual(runs, exact) {
		t.Errorf("learnt runs %q, want %q", runs, exact)
	}
	if c.IDs != nil {
		want := append(append([]int{}, *c.IDs...), p.EOS)
		ids := make([]int, len(got.IDs))
		for j, id := range got.IDs {
			ids[j] = int(id)
		}
		same := reflect.DeepEqual(ids, want) || reflect.DeepEqual(ids, *c.IDs)
		if !same && !idsDiffer {
			t.Errorf("trained ids differ from the rendering's\n got %v\nwant %v (+ EOS)", ids, *c.IDs)
		}
		if same && idsDiffer {
			t.Errorf("trained ids are now the rendering's: remove the case from segmentIDsDiffer")
		}
	}
}
