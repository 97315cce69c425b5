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
