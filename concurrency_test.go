package ftune

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestConversationConcurrentSends: Sends on one Conversation from several
// goroutines each keep their turn. Each Send used to copy the history,
// generate, then store the copy with its turn: the ones that ran at the
// same time overwrote each other's, keeping 2 of 16 messages (and racing
// on Messages, which -race reports).
func TestConversationConcurrentSends(t *testing.T) {
	m := tinyModel(t)
	c := m.NewConversation("")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.Send(context.Background(), fmt.Sprintf("question %d", i), GenerateOptions{MaxNewTokens: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if len(c.Messages) != 2*n {
		t.Fatalf("%d concurrent sends kept %d messages, want %d", n, len(c.Messages), 2*n)
	}
	var asked []string
	for i, msg := range c.Messages {
		if want := []string{"user", "assistant"}[i%2]; msg.Role != want {
			t.Fatalf("message %d is the %s's, want the %s's: %+v", i, msg.Role, want, c.Messages)
		}
		if msg.Role == "user" {
			asked = append(asked, msg.Content)
		}
	}
	slices.Sort(asked)
	for i, q := range asked {
		if want := fmt.Sprintf("question %d", i); q != want {
			t.Fatalf("questions kept %q, want each of the %d once", asked, n)
		}
	}
	if c.replies != n {
		t.Errorf("%d replies counted, want %d", c.replies, n)
	}
}

// TestConversationZeroValue: a Conversation that no model made (the zero
// value, or one decoded from JSON) refuses Send with an error instead of a
// nil-pointer panic; decoded into NewConversation's, it resumes.
func TestConversationZeroValue(t *testing.T) {
	var zero Conversation
	if _, err := zero.Send(context.Background(), "hi", GenerateOptions{}); err == nil || !strings.Contains(err.Error(), "NewConversation") {
		t.Fatalf("Send on a zero Conversation: %v, want an error naming NewConversation", err)
	}

	m := tinyModel(t)
	c := m.NewConversation("You answer in one word.")
	if _, err := c.Send(context.Background(), "Symbol of iron?", GenerateOptions{MaxNewTokens: 3}); err != nil {
		t.Fatal(err)
	}
	saved, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Conversation
	if err := json.Unmarshal(saved, &decoded); err != nil {
		t.Fatal(err)
	}
	if _, err := decoded.Send(context.Background(), "And of gold?", GenerateOptions{MaxNewTokens: 3}); err == nil {
		t.Fatal("a Conversation decoded from JSON, with no model, replied")
	}
	resumed := m.NewConversation("")
	if err := json.Unmarshal(saved, resumed); err != nil {
		t.Fatal(err)
	}
	if resumed.System != c.System || !reflect.DeepEqual(resumed.Messages, c.Messages) {
		t.Fatalf("resumed %q %+v, want %q %+v", resumed.System, resumed.Messages, c.System, c.Messages)
	}
	if _, err := resumed.Send(context.Background(), "And of gold?", GenerateOptions{MaxNewTokens: 3}); err != nil || len(resumed.Messages) != 4 {
		t.Fatalf("resumed conversation: %v, %d messages, want 4", err, len(resumed.Messages))
	}
}

// TestModelConcurrentReplies: Generate and Chat from many goroutines on one
// Model give each the reply it gives alone (Model's documented promise;
// run with -race to check that they share nothing they write).
func TestModelConcurrentReplies(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	opt := GenerateOptions{MaxNewTokens: 6, Temperature: 0.8, Seed: 5}
	msgs := []Message{{Role: "user", Content: "Symbol of iron?"}}
	gen, err := m.Generate(ctx, "The capital of France is", opt)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := m.Chat(ctx, msgs, opt)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	got := make([]Reply, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				got[i], errs[i] = m.Generate(ctx, "The capital of France is", opt)
			} else {
				got[i], errs[i] = m.Chat(ctx, msgs, opt)
			}
		})
	}
	wg.Wait()
	for i := range n {
		want := []Reply{gen, chat}[i%2]
		if errs[i] != nil || got[i] != want {
			t.Errorf("goroutine %d: %+v, %v; want %+v", i, got[i], errs[i], want)
		}
	}
}
