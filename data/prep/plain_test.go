package prep

import (
	"errors"
	"slices"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// mergeEncoder is byteEncoder whose space before a letter joins it, as a
// byte-level BPE writes " Lima" as one token: a prompt that ends in a
// space encodes that space alone, and the same text followed by "Lima"
// does not.
type mergeEncoder struct{}

const fakeSpaced = 300 // + the byte after the space

func (mergeEncoder) Encode(text string, addSpecial bool) ([]int, error) {
	var ids []int
	if addSpecial {
		ids = append(ids, fakeBOS)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' && i+1 < len(text) && text[i+1] != ' ' {
			ids = append(ids, fakeSpaced+int(text[i+1]))
			i++
			continue
		}
		ids = append(ids, fakeByteBase+int(text[i]))
	}
	return ids, nil
}

func textPair(prompt, completion string) format.Example {
	return format.Example{Messages: []format.Message{{Role: format.RoleUser, Content: prompt}, {Role: format.RoleAssistant, Content: completion}}, TextPair: true, Source: "p.jsonl:1"}
}

// TestPlainPair: under Plain (data.template none) a text pair's tokens are
// the prompt and completion encoded as one text with the special tokens
// and EOS, as TRL's SFTTrainer tokenizes a standard prompt-completion
// record, and its labels are those tokens with the prompt's masked: the
// prompt's own tokens, or where its last ones merge with the completion's
// first (a prompt ending in a space), those it shares with the whole, so
// that the completion keeps its first token (TRL's mask would cut it).
func TestPlainPair(t *testing.T) {
	for _, tc := range []struct {
		name, prompt, completion string
		merged                   int // prompt tokens merged with the completion's
	}{
		{"no merge", "The capital of Peru is", " Lima.", 0},
		// "is " alone ends in the space token; "is Lima." joins it to L.
		{"merge", "The capital of Peru is ", "Lima.", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := mergeEncoder{}
			whole, _ := enc.Encode(tc.prompt+tc.completion, true)
			prompt, _ := enc.Encode(tc.prompt, true)
			promptTokens := len(prompt) - tc.merged
			wantIDs := toInt32(append(whole, fakeEOT))
			p := &Preprocessor{Enc: enc, EOS: fakeEOT, Plain: true}
			got, out, err := p.Tokenize(textPair(tc.prompt, tc.completion))
			if err != nil || out != Kept {
				t.Fatalf("Tokenize: %v, %v", out, err)
			}
			if !slices.Equal(got.IDs, wantIDs) {
				t.Fatalf("ids %v, want the text's %v", got.IDs, wantIDs)
			}
			for j, l := range got.Labels {
				want := got.IDs[j]
				if j < promptTokens {
					want = IgnoreIndex
				}
				if l != want {
					t.Fatalf("label %d is %d, want %d (labels %v)", j, l, want, got.Labels)
				}
			}
			// The completion's text is learnt whole: its first token is
			// " L" in both cases.
			if first := got.IDs[promptTokens]; first != fakeSpaced+'L' {
				t.Errorf("first learnt token %d, want \" L\" (%d)", first, fakeSpaced+'L')
			}

			p.Opts.TrainOnInputs = true
			got, _, err = p.Tokenize(textPair(tc.prompt, tc.completion))
			if err != nil || !slices.Equal(got.IDs, wantIDs) || !slices.Equal(got.Labels, wantIDs) {
				t.Errorf("train_on_inputs: ids %v labels %v, %v; want every token learnt", got.IDs, got.Labels, err)
			}
		})
	}
}

// TestPlainPairBounds: max_length truncates a plain pair as any prompt
// and answer (the prompt kept, the completion cut), a pair whose prompt
// fills the length is dropped for having nothing to learn, and EOS is not
// added twice nor when NoEOS.
func TestPlainPairBounds(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, EOS: fakeEOT, Plain: true, Opts: Options{MaxLen: 6}}
	got, out, err := p.Tokenize(textPair("Q: ", "a long answer"))
	if err != nil || out != Truncated || fakeDecode(got.IDs) != "<s>Q: a " || learntRuns(got) != "a " {
		t.Errorf("truncated: %q learnt %q, %v, %v", fakeDecode(got.IDs), learntRuns(got), out, err)
	}
	if _, out, err := p.Tokenize(textPair("a long prompt", "A")); err != nil || out != DroppedNoLabel {
		t.Errorf("prompt over max_length: %v, %v; want dropped with nothing to learn", out, err)
	}
	p.Opts.MaxLen = 0
	got, _, err = p.Tokenize(textPair("Q", "A<|endoftext|>"))
	if err != nil || fakeDecode(got.IDs) != "<s>QA<|endoftext|>" || learntRuns(got) != "A<|endoftext|>" {
		t.Errorf("ending in EOS: %q learnt %q, %v", fakeDecode(got.IDs), learntRuns(got), err)
	}
	p.Opts.NoEOS = true
	got, _, err = p.Tokenize(textPair("Q", "A"))
	if err != nil || fakeDecode(got.IDs) != "<s>QA" || learntRuns(got) != "A" {
		t.Errorf("NoEOS: %q learnt %q, %v", fakeDecode(got.IDs), learntRuns(got), err)
	}
}

// TestPlainRefusesConversations: without a template a conversation (a
// chat, an alpaca record, a prompt of messages) has no text to be, and a
// text pair's system prompt no place; plain text is read as always, and
// a text pair under a template is the conversation it always was.
func TestPlainRefusesConversations(t *testing.T) {
	p := &Preprocessor{Enc: byteEncoder{}, EOS: fakeEOT, Plain: true}
	chat := textPair("Q", "A")
	chat.TextPair = false
	if _, _, err := p.Tokenize(chat); !errors.Is(err, ErrNeedsTemplate) {
		t.Errorf("chat: %v, want ErrNeedsTemplate", err)
	}
	sys := textPair("Q", "A")
	sys.Messages = append([]format.Message{{Role: format.RoleSystem, Content: "S"}}, sys.Messages...)
	if _, _, err := p.Tokenize(sys); !errors.Is(err, ErrNeedsTemplate) {
		t.Errorf("system prompt: %v, want ErrNeedsTemplate", err)
	}
	got, _, err := p.Tokenize(format.Example{Text: "once"})
	if err != nil || learntRuns(got) != "<s>once<|endoftext|>" {
		t.Errorf("plain text: learnt %q, %v", learntRuns(got), err)
	}
	p.Plain, p.Enc, p.Tmpl = false, byteOffsetEncoder{}, chatML{}
	got, _, err = p.Tokenize(textPair("Q", "A"))
	if err != nil || fakeDecode(got.IDs) != "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|endoftext|>" {
		t.Errorf("under a template: %q, %v", fakeDecode(got.IDs), err)
	}
}

// TestPromptTokens: the shared rule of supervised plain pairs and of DPO
// and KTO's text pairs.
func TestPromptTokens(t *testing.T) {
	for _, tc := range []struct {
		prompt  []int
		wholes  [][]int
		k       int
		cut, ok bool
	}{
		{[]int{1, 2}, [][]int{{1, 2, 3}}, 2, false, true},
		{[]int{1, 2}, [][]int{{1, 2, 3}, {1, 5}}, 1, true, true},
		{[]int{1, 2}, [][]int{{7, 2, 3}}, 0, false, false},
	} {
		k, cut, err := PromptTokens(tc.prompt, tc.wholes...)
		if k != tc.k || cut != tc.cut || (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrPromptBoundary)) {
			t.Errorf("PromptTokens(%v, %v) = %d, %v, %v; want %d, %v, ok %v", tc.prompt, tc.wholes, k, cut, err, tc.k, tc.cut, tc.ok)
		}
	}
}
