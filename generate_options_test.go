package ftune

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
)

// TestGenerateOptionsValidate: TopK and TopP with Temperature 0 were
// dropped without a word (greedy decoding samples nothing); they are
// refused, as are an infinite temperature (nn took it) and the ranges nn
// refused after the prompt was rendered. Generate, Chat and Send refuse
// them before any work, and Send keeps nothing.
func TestGenerateOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		opt  GenerateOptions
		want string // "" valid
	}{
		{GenerateOptions{}, ""},
		{GenerateOptions{Seed: 7}, ""}, // unused when greedy, as documented: 0 is a seed too
		{GenerateOptions{Temperature: 0.8, TopK: 5, TopP: 0.9, Seed: 1}, ""},
		{GenerateOptions{Temperature: 1, TopP: 1}, ""},
		{GenerateOptions{TopK: 5}, "TopK 5, TopP 0 filter sampling, and Temperature 0 is greedy"},
		{GenerateOptions{TopP: 0.9}, "Temperature 0 is greedy"},
		{GenerateOptions{Temperature: -1}, "Temperature -1: want a finite value"},
		{GenerateOptions{Temperature: math.Inf(1)}, "Temperature +Inf"},
		{GenerateOptions{Temperature: math.NaN()}, "Temperature NaN"},
		{GenerateOptions{Temperature: 1, TopK: -1}, "TopK -1"},
		{GenerateOptions{Temperature: 1, TopP: 1.5}, "TopP 1.5"},
		{GenerateOptions{MaxNewTokens: -1}, "MaxNewTokens -1"},
		// The repetition penalty, min-p and stop strings (0 and nil: off).
		{GenerateOptions{RepetitionPenalty: 1.3, StopStrings: []string{"\n", "Q:"}}, ""}, // greedy too
		{GenerateOptions{Temperature: 0.7, MinP: 0.05, RepetitionPenalty: 0.9}, ""},
		{GenerateOptions{Temperature: 1, MinP: 1}, ""},
		{GenerateOptions{RepetitionPenalty: -1}, "RepetitionPenalty -1: want a finite value > 0"},
		{GenerateOptions{RepetitionPenalty: math.NaN()}, "RepetitionPenalty NaN"},
		{GenerateOptions{RepetitionPenalty: math.Inf(1)}, "RepetitionPenalty +Inf"},
		{GenerateOptions{Temperature: 1, MinP: 1.5}, "MinP 1.5: want 0 < MinP ≤ 1"},
		{GenerateOptions{Temperature: 1, MinP: -0.1}, "MinP -0.1"},
		{GenerateOptions{Temperature: 1, MinP: math.NaN()}, "MinP NaN"},
		{GenerateOptions{MinP: 0.1}, "MinP 0.1 filters sampling, and Temperature 0 is greedy"},
		{GenerateOptions{StopStrings: []string{"x", ""}}, "StopStrings[1] is empty"},
		{GenerateOptions{StopStrings: []string{"a\xffb"}}, "StopStrings[0] \"a\\xffb\": byte 2 is not valid UTF-8"},
	} {
		err := c.opt.Validate()
		if (err == nil) != (c.want == "") || err != nil && (!strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidInput)) {
			t.Errorf("%+v: got %v, want %q, matching ErrInvalidInput", c.opt, err, c.want)
		}
	}
	m := tinyModel(t)
	ctx := context.Background()
	bad := GenerateOptions{TopK: 5, MaxNewTokens: 2}
	if _, err := m.Generate(ctx, "Once", bad); err == nil || !strings.Contains(err.Error(), "Temperature 0") {
		t.Errorf("Generate: %v", err)
	}
	if _, err := m.Chat(ctx, []Message{{Role: "user", Content: "hi"}}, bad); err == nil || !strings.Contains(err.Error(), "Temperature 0") {
		t.Errorf("Chat: %v", err)
	}
	c := m.NewConversation("")
	if _, err := c.Send(ctx, "hi", bad); err == nil || !strings.Contains(err.Error(), "Temperature 0") || len(c.Messages) != 0 {
		t.Errorf("Send: %v, %d messages kept", err, len(c.Messages))
	}
}

// TestChatNamesTheMessageNotUTF8: a message that is not UTF-8 was reported
// at a byte of the rendered template text ("encode: byte 101"); it is now
// named by its place, role and byte. Its place counts from 0, as msgs'
// indices and the template's role error do (it counted from 1: the first
// message was message 0 with an unknown role, message 1 with bad UTF-8).
func TestChatNamesTheMessageNotUTF8(t *testing.T) {
	m := tinyModel(t)
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "xy\xffz"}}
	_, err := m.Chat(context.Background(), msgs, GenerateOptions{MaxNewTokens: 2})
	if !errors.Is(err, tokenizer.ErrInvalidUTF8) || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "message 1 (user), byte 3") {
		t.Fatalf("got %v, want message 1 (user), byte 3, wrapping tokenizer.ErrInvalidUTF8 and ErrInvalidInput", err)
	}
}

// TestCheckThinking: a program can refuse Thinking right after loading;
// nil needs nothing of the template.
func TestCheckThinking(t *testing.T) {
	m := tinyModel(t)
	off := false
	if err := m.CheckThinking(&off); !errors.Is(err, ErrNoThinking) {
		t.Errorf("tiny-base, thinking off: %v, want ErrNoThinking", err)
	}
	if err := m.CheckThinking(nil); err != nil {
		t.Errorf("nil: %v", err)
	}
}
