package ftune

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Conversation is a chat that keeps its turns. Before each reply it drops
// the oldest turns, whole exchanges at a time (the system message stays),
// until the prompt leaves room for MaxNewTokens in the model's context;
// Reply.DroppedTurns says how many messages went. A single message too
// long for the context is refused (ErrContextFull) and not kept. The room
// kept is the whole of MaxNewTokens: one as large as the context leaves
// none for the history, and every turn then drops all the earlier ones.
type Conversation struct {
	m        *Model
	System   string    // "" = none
	Messages []Message // the turns so far, without the system message
}

// NewConversation starts a chat; system is the system message ("" none).
func (m *Model) NewConversation(system string) *Conversation {
	return &Conversation{m: m, System: system}
}

// Reset forgets the turns (the system message stays).
func (c *Conversation) Reset() { c.Messages = nil }

// Send adds the user's message and generates the reply, which is kept.
func (c *Conversation) Send(ctx context.Context, user string, opt GenerateOptions) (Reply, error) {
	if err := opt.Validate(); err != nil {
		return Reply{}, err
	}
	want := opt.MaxNewTokens
	if want <= 0 {
		want = 64
	}
	turns := append(slices.Clone(c.Messages), Message{Role: "user", Content: user})
	dropped := 0
	var ids []int
	for {
		var err error
		if ids, err = c.m.chatPrompt(ctx, c.withSystem(turns), opt.Thinking); err != nil {
			return Reply{}, err
		}
		// want may be as large as math.MaxInt: len(ids)+want would wrap
		// around and keep every turn. The difference cannot overflow.
		if want <= c.m.Net.Config.MaxPositions-len(ids) || len(turns) == 1 {
			break
		}
		// Drop the oldest exchange: a user message and the answer to it.
		n := 1
		if len(turns) > 2 && turns[1].Role == "assistant" {
			n = 2
		}
		turns, dropped = turns[n:], dropped+n
	}
	if c.m.Net.Room(len(ids)) == 0 {
		// Every earlier turn is gone by now: what is left is this message
		// (and the system message, which is never dropped).
		what := "this message takes"
		if c.System != "" {
			what = "this message with the system message takes"
		}
		return Reply{PromptTokens: len(ids)}, fmt.Errorf("chat: %w: %s %d tokens and the model's context holds %d; send a shorter message",
			ErrContextFull, what, len(ids), c.m.Net.Config.MaxPositions)
	}
	r, err := c.m.generate(ctx, ids, opt, c.m.chatStops())
	r.DroppedTurns = dropped
	if err != nil {
		return r, err
	}
	c.Messages = append(turns, Message{Role: "assistant", Content: strings.TrimSpace(r.Text)})
	return r, nil
}

func (c *Conversation) withSystem(turns []Message) []Message {
	if c.System == "" {
		return turns
	}
	return append([]Message{{Role: "system", Content: c.System}}, turns...)
}
