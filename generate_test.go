package ftune

import (
	"math"

	"context"
	"errors"
	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"strings"
	"testing"
)

func tinyModel(t *testing.T) *Model {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	m, err := Load(TinyBase, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The streamed pieces are the reply's text exactly, and that text is the
// decoding of the generated ids.
func TestGenerateStreamsTheReply(t *testing.T) {
	m := tinyModel(t)
	var pieces []string
	r, err := m.Generate(context.Background(), "The capital of France is", GenerateOptions{MaxNewTokens: 12, OnText: func(s string) error {
		pieces = append(pieces, s)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pieces, "") != r.Text || r.Text == "" || len(pieces) < 2 {
		t.Fatalf("streamed %q, reply %q", pieces, r.Text)
	}
	if r.Tokens == 0 || r.Stopped == "" {
		t.Fatalf("reply %+v", r)
	}
	// A callback error stops generation and is returned.
	stop := errors.New("enough")
	if _, err := m.Generate(context.Background(), "Once", GenerateOptions{OnText: func(string) error { return stop }}); !errors.Is(err, stop) {
		t.Fatalf("callback error: got %v", err)
	}
	// A cancelled context stops it too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, "Once", GenerateOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
}

// A prompt longer than the context is an error (it printed nothing and
// exited 0 before), in Generate, Chat and a conversation's first message.
func TestPromptLongerThanContextIsRefused(t *testing.T) {
	m := tinyModel(t)
	long := strings.Repeat("iron and gold ", 600)
	if _, err := m.Generate(context.Background(), long, GenerateOptions{}); !errors.Is(err, ErrContextFull) {
		t.Fatalf("Generate: err = %v, want ErrContextFull", err)
	}
	if _, err := m.Chat(context.Background(), []Message{{Role: "user", Content: long}}, GenerateOptions{}); !errors.Is(err, ErrContextFull) {
		t.Fatalf("Chat: err = %v, want ErrContextFull", err)
	}
	c := m.NewConversation("")
	if _, err := c.Send(context.Background(), long, GenerateOptions{}); !errors.Is(err, ErrContextFull) {
		t.Fatalf("Send: err = %v, want ErrContextFull", err)
	}
	if len(c.Messages) != 0 {
		t.Fatalf("the refused message was kept: %d messages", len(c.Messages))
	}
}

// A long chat drops its oldest turns instead of overflowing the context
// (replies came back empty before), keeps the system message and says how
// many messages went.
func TestConversationDropsOldTurns(t *testing.T) {
	m := tinyModel(t)
	m.Net.Config.MaxPositions = 160 // a short context: a few turns fill it
	c := m.NewConversation("You answer questions about chemistry.")
	opt := GenerateOptions{MaxNewTokens: 16}
	dropped := 0
	for i := 0; i < 8; i++ {
		r, err := c.Send(context.Background(), "Which element has atomic number 26, and what is its symbol?", opt)
		if err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
		if r.Tokens == 0 {
			t.Fatalf("turn %d: empty reply", i)
		}
		if r.PromptTokens+opt.MaxNewTokens > m.Net.Config.MaxPositions {
			t.Fatalf("turn %d: prompt of %d tokens + %d new passes the context of %d", i, r.PromptTokens, opt.MaxNewTokens, m.Net.Config.MaxPositions)
		}
		dropped += r.DroppedTurns
	}
	if dropped == 0 {
		t.Fatal("8 turns in a 160-token context dropped nothing")
	}
	if c.Messages[0].Role != "user" || c.System == "" {
		t.Fatalf("history starts with %q", c.Messages[0].Role)
	}
	c.Reset()
	if len(c.Messages) != 0 {
		t.Fatal("Reset kept messages")
	}
}

// An adapter holding NaN gives an error naming non-finite logits (it gave
// empty output with exit 0).
func TestNaNAdapterNamesNonFiniteLogits(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	tiny, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	adapter := trainedAdapter(t, tiny)
	c, w, err := lora.LoadAdapter(adapter)
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range w {
		x.Data[0] = float32(math.NaN())
		w[name] = x
	}
	if err := lora.SaveAdapter(adapter, c, w); err != nil {
		t.Fatal(err)
	}
	m, err := Load("", LoadOptions{Adapter: adapter})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Chat(context.Background(), []Message{{Role: "user", Content: "Symbol of iron?"}}, GenerateOptions{MaxNewTokens: 4})
	if !errors.Is(err, nn.ErrNonFinite) {
		t.Fatalf("NaN adapter: reply %q, err %v; want nn.ErrNonFinite", r.Text, err)
	}
}

// TestConversationTurnsSampleTheirOwnStream: reply n of a conversation
// samples from TurnSeed(seed, n), the first from the seed itself (as
// Chat), so that turns do not replay one stream (they drew the same
// numbers every turn); Reset starts the streams again, and the same
// conversation replays exactly.
func TestConversationTurnsSampleTheirOwnStream(t *testing.T) {
	m := tinyModel(t)
	opt := GenerateOptions{MaxNewTokens: 12, Temperature: 1.5, Seed: 7}
	ctx := context.Background()
	c := m.NewConversation("")
	q1, q2 := "Which element has atomic number 26?", "And its symbol?"
	r1, err := c.Send(ctx, q1, opt)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Send(ctx, q2, opt)
	if err != nil {
		t.Fatal(err)
	}
	history := []Message{{Role: "user", Content: q1}, {Role: "assistant", Content: strings.TrimSpace(r1.Text)}, {Role: "user", Content: q2}}
	chat := func(seed uint64) string {
		o := opt
		o.Seed = seed
		r, err := m.Chat(ctx, history, o)
		if err != nil {
			t.Fatal(err)
		}
		return r.Text
	}
	if first, err := m.Chat(ctx, history[:1], opt); err != nil || first.Text != r1.Text {
		t.Errorf("the first reply %q (%v); Chat with the seed gives %q", r1.Text, err, first.Text)
	}
	if got := chat(TurnSeed(opt.Seed, 1)); got != r2.Text {
		t.Errorf("the second reply %q; Chat with TurnSeed(7, 1) gives %q", r2.Text, got)
	}
	if got := chat(opt.Seed); got == r2.Text {
		t.Errorf("the second reply %q is the seed's own stream's, as the first", got)
	}
	c.Reset()
	if again, err := c.Send(ctx, q1, opt); err != nil || again.Text != r1.Text {
		t.Errorf("after Reset the first reply is %q (%v), was %q", again.Text, err, r1.Text)
	}
}
