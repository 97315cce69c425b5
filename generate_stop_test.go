package ftune

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// The goldens of this file come from transformers 5.12.1 on tiny-base
// (float32 weights; ftune's bf16 weights are the same values): the raw
// prompt is tok("The capital of France is") ([878 1893 273 2540 336], no
// BOS), the chat prompt apply_chat_template of "Symbol of iron?" with the
// generation prompt, then model.generate(ids, do_sample=False,
// max_new_tokens=24, ...) with the arguments each case names.

// hfPrompt gives the ids ftune's Generate (raw) or Chat encodes.
func hfPrompt(t *testing.T, m *Model, chat bool, text string) []int {
	t.Helper()
	if chat {
		ids, err := m.chatPrompt(context.Background(), []Message{{Role: "user", Content: text}}, GenerateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	enc, err := m.Tokenizer.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	return enc.IDs
}

// reply runs Generate (raw) or Chat on text, and checks that the text it
// streamed is its Text.
func hfReply(t *testing.T, m *Model, chat bool, text string, opt GenerateOptions) Reply {
	t.Helper()
	var streamed strings.Builder
	opt.OnText = func(s string) error { streamed.WriteString(s); return nil }
	var r Reply
	var err error
	if chat {
		r, err = m.Chat(context.Background(), []Message{{Role: "user", Content: text}}, opt)
	} else {
		r, err = m.Generate(context.Background(), text, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != r.Text {
		t.Errorf("%q, %+v: streamed %q, reply %q", text, opt, streamed.String(), r.Text)
	}
	return r
}

// TestRepetitionPenaltyMatchesTransformers: GenerateOptions had no
// repetition penalty. Greedy, as transformers' generate(do_sample=False,
// repetition_penalty=p): token for token, over the prompt's ids too (in
// the chat, " of" of "Symbol of iron?" is penalized from the first token
// on: the reply turns at its 4th token, where it wrote " of" unpenalized).
func TestRepetitionPenaltyMatchesTransformers(t *testing.T) {
	m := tinyModel(t)
	const raw, chat = "The capital of France is", "Symbol of iron?"
	for _, c := range []struct {
		chat    bool
		penalty float64
		hf      []int
	}{
		{false, 0, []int{602, 286, 1309, 17, 362, 531, 273, 263, 595, 516, 336, 262, 926, 273, 968, 737, 282, 263, 599, 273, 263, 595, 516, 17}},
		{false, 1.3, []int{602, 286, 1309, 17, 362, 531, 15, 353, 263, 595, 516, 15, 426, 419, 377, 368, 2476, 282, 2491, 503, 811, 284, 2719, 695}},
		{false, 0.7, []int{602, 286, 1309, 286, 263, 1309, 273, 263, 1175, 286, 263, 1309, 273, 263, 1175, 286, 263, 1309, 273, 263, 1175, 286, 263, 1309}},
		{true, 0, []int{408, 292, 572, 273, 263, 829, 336, 263, 744, 1150, 273, 263, 599, 17, 202, 202, 878, 317, 406, 263, 1115, 273, 263, 741}},
		{true, 1.3, []int{408, 292, 572, 2022, 286, 263, 770, 15, 284, 431, 335, 17, 362, 2979, 86, 406, 367, 282, 302, 202, 71, 733, 527, 296}},
		{true, 0.7, []int{54, 80, 380, 536, 78, 34, 202, 202, 54, 268, 398, 416, 273, 263, 2320, 1665, 273, 263, 1665, 273, 263, 1665, 273, 263}},
	} {
		text := raw
		if c.chat {
			text = chat
		}
		ids, err := m.Net.Generate(hfPrompt(t, m, c.chat, text), nn.GenerateOptions{MaxNewTokens: 24, RepetitionPenalty: c.penalty})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, c.hf) {
			t.Errorf("chat %v, penalty %g: %v; transformers %v", c.chat, c.penalty, ids, c.hf)
		}
		want, err := m.Tokenizer.Decode(c.hf, true)
		if err != nil {
			t.Fatal(err)
		}
		if r := hfReply(t, m, c.chat, text, GenerateOptions{MaxNewTokens: 24, RepetitionPenalty: c.penalty}); r.Text != want || r.Stopped != StopLength {
			t.Errorf("chat %v, penalty %g: reply %q (stopped %q); transformers %q", c.chat, c.penalty, r.Text, r.Stopped, want)
		}
	}
}

// TestStopStringsMatchTransformers: GenerateOptions had no stop strings.
// A reply stops on the token transformers' generate(stop_strings=...,
// tokenizer=tok) stops on (hf is how many it generated) whether the stop
// string is one token, straddles two or three, or ends inside one; its
// text ends before the stop string (transformers keeps it, and the rest of
// the token, in its ids; Text leaves it out as it leaves a stop token out),
// and nothing of it was streamed.
func TestStopStringsMatchTransformers(t *testing.T) {
	m := tinyModel(t)
	for _, c := range []struct {
		chat    bool
		stops   []string
		penalty float64
		hf      int    // tokens transformers generated
		text    string // ftune's reply: transformers' decoded text up to the stop string
		stop    string
	}{
		{false, []string{"ted St"}, 0, 10, " now in progress. The Government of the Uni", "ted St"}, // " United", " States"
		{false, []string{"."}, 0, 4, " now in progress", "."},
		{false, []string{"ernmen"}, 0, 6, " now in progress. The Gov", "ernmen"}, // inside " Government"
		{false, []string{"States", "ress. T"}, 0, 5, " now in prog", "ress. T"},  // the first found
		{true, []string{"\n\n"}, 0, 16, "than any of the men is the most important of the people.", "\n\n"},
		{true, []string{"world"}, 1.3, 7, "than anywhere in the ", "world"},
	} {
		text := "The capital of France is"
		if c.chat {
			text = "Symbol of iron?"
		}
		r := hfReply(t, m, c.chat, text, GenerateOptions{MaxNewTokens: 24, StopStrings: c.stops, RepetitionPenalty: c.penalty})
		if r.Tokens != c.hf || r.Text != c.text || r.Stopped != StopString || r.Stop != c.stop {
			t.Errorf("%q: %d tokens, %q, stopped %q at %q; transformers stopped after %d tokens: want %q, stopped %q at %q",
				c.stops, r.Tokens, r.Text, r.Stopped, r.Stop, c.hf, c.text, StopString, c.stop)
		}
	}
}

// TestStopStringHeldBackThenReleased: text that begins a stop string is
// held back from OnText until the next tokens tell; when they tell it is
// not one, it is streamed, and a reply that ends while holding some keeps
// it. The reply is the one without stop strings.
func TestStopStringHeldBackThenReleased(t *testing.T) {
	m := tinyModel(t)
	const prompt = "The capital of France is"
	plain := hfReply(t, m, false, prompt, GenerateOptions{MaxNewTokens: 24})
	if !strings.Contains(plain.Text, "United States") || !strings.HasSuffix(plain.Text, "States.") {
		t.Fatalf("the test's premise: %q", plain.Text)
	}
	// "United Kingdom" is held from " United" on and released at
	// " States"; "States.!" is still held when the reply ends.
	r := hfReply(t, m, false, prompt, GenerateOptions{MaxNewTokens: 24, StopStrings: []string{"United Kingdom", "States.!"}})
	if r.Text != plain.Text || r.Stopped != StopLength || r.Stop != "" || r.Tokens != 24 {
		t.Errorf("reply %+v; want %q, stopped by length", r, plain.Text)
	}
}

func TestStopMatcher(t *testing.T) {
	for _, c := range []struct {
		stops  []string
		pieces []string
		out    []string // what add returns for each piece
		held   string
		found  string
	}{
		{[]string{"ab"}, []string{"xa", "b", "c"}, []string{"x", ""}, "", "ab"},
		{[]string{"ab"}, []string{"xa", "c"}, []string{"x", "ac"}, "", ""},
		{[]string{"abc", "bd"}, []string{"ab", "d"}, []string{"", "a"}, "", "bd"},                 // held "ab" for abc; bd found in it
		{[]string{"aab"}, []string{"aaa", "b"}, []string{"a", ""}, "", "aab"},                     // held "aa", then "aab" found in "aab"
		{[]string{"xyz", "yz"}, []string{"wxyz"}, []string{"w"}, "", "xyz"},                       // the first to begin
		{[]string{"yz", "xyz"}, []string{"wxyz"}, []string{"w"}, "", "xyz"},                       // the same, listed the other way
		{[]string{"é!"}, []string{"café"}, []string{"caf"}, "é", ""},                              // whole characters held
		{[]string{"stop"}, []string{"", "s", "to", "pped"}, []string{"", "", "", ""}, "", "stop"}, // ["s", "to", "pped"]
	} {
		sm := stopMatcher{stops: c.stops}
		var out []string
		found := ""
		for _, p := range c.pieces {
			if found != "" {
				break
			}
			var o string
			o, found = sm.add(p)
			out = append(out, o)
		}
		if !slices.Equal(out, c.out) || sm.held != c.held || found != c.found {
			t.Errorf("stops %q, pieces %q: out %q, held %q, found %q; want %q, %q, %q", c.stops, c.pieces, out, sm.held, found, c.out, c.held, c.found)
		}
	}
}

// TestStopStringSpecialToken: a stop string that is one special token of
// the vocabulary could never match the reply's text, which leaves special
// tokens out; it stops the reply when that token is generated, as
// transformers' stop_strings (which match token strings) do. tiny-base's
// <|im_start|> (id 1, no stop token) is given the embedding of "." (id
// 17; embeddings are tied, so greedy decoding picks the lower id, 1).
func TestStopStringSpecialToken(t *testing.T) {
	m := tinyModel(t)
	start, ok := m.Tokenizer.TokenToID("<|im_start|>")
	if !ok || start != 1 {
		t.Fatalf("<|im_start|> is %d, %v; want 1", start, ok)
	}
	giveEmbedding(m, start, 17)

	const prompt = "The capital of France is" // no special token in it
	plain, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 24})
	if err != nil {
		t.Fatal(err)
	}
	const before = " now in progress" // and "." where <|im_start|> now is
	if !strings.HasPrefix(plain.Text, before+" The") || plain.Tokens != 24 {
		t.Fatalf("the test's premise: %+v", plain)
	}
	r, err := m.Generate(context.Background(), prompt, GenerateOptions{MaxNewTokens: 24, StopStrings: []string{"<|im_start|>"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != before || r.Tokens != 4 || r.Stopped != StopString || r.Stop != "<|im_start|>" {
		t.Errorf("reply %+v; want %q, stopped after 4 tokens by <|im_start|>", r, before)
	}
}

// TestConversationKeepsTextBeforeStop: a conversation keeps the reply
// without its stop string.
func TestConversationKeepsTextBeforeStop(t *testing.T) {
	m := tinyModel(t)
	c := m.NewConversation("")
	r, err := c.Send(context.Background(), "Symbol of iron?", GenerateOptions{MaxNewTokens: 24, StopStrings: []string{" most"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "than any of the men is the"
	if r.Text != want || len(c.Messages) != 2 || c.Messages[1].Content != want {
		t.Errorf("reply %q, messages %+v; want %q kept", r.Text, c.Messages, want)
	}
}
