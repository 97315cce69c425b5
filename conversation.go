package ftune

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Conversation is a chat that keeps its turns. Before each reply it drops
// the oldest turns, whole exchanges at a time (the system message stays),
// until the prompt leaves room for MaxNewTokens in the model's context;
// Reply.DroppedTurns says how many messages went. A single message too
// long for the context is refused (ErrContextFull) and not kept. The room
// kept is the whole of MaxNewTokens: one as large as the context leaves
// none for the history, and every turn then drops all the earlier ones.
//
// Sampling: the n-th reply since the start (or Reset) samples from its own
// stream, derived from GenerateOptions.Seed and n (TurnSeed), so that
// turns do not draw the same numbers and a conversation replays exactly.
//
// A Conversation is made by Model.NewConversation; the zero value has no
// model, and its Send returns an error. To resume one saved earlier (its
// System and Messages, as encoding/json writes them), make it with
// NewConversation and set Messages, or json.Unmarshal into it; replies
// are counted from there for TurnSeed.
//
// Sends on one Conversation from several goroutines are serialised: each
// waits for the one before it and sees its turn, so none is lost. Reset
// waits likewise. System and Messages are plain fields: read or set them
// only while no Send runs.
type Conversation struct {
	m        *Model
	System   string    // "" = none
	Messages []Message // the turns so far, without the system message
	replies  int       // replies since the start, Reset or resume

	mu sync.Mutex // held by Send and Reset
}

// TurnSeed is the sampling seed of a conversation's reply n (0: the
// first) for GenerateOptions.Seed seed: seed itself for the first, so that
// a one-shot chat samples as Generate and Chat do, and a different
// stream for each later one (seed + n times 2^64/φ, splitmix64's step).
func TurnSeed(seed uint64, n int) uint64 { return seed + uint64(n)*0x9e3779b97f4a7c15 }

// NewConversation starts a chat; system is the system message ("" none).
func (m *Model) NewConversation(system string) *Conversation {
	return &Conversation{m: m, System: system}
}

// Reset forgets the turns (the system message stays) and starts the
// sampling streams again.
func (c *Conversation) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Messages, c.replies = nil, 0
}

// Send adds the user's message and generates the reply, which is kept.
// Concurrent Sends run one after the other, in the order they get the
// conversation's lock.
func (c *Conversation) Send(ctx context.Context, user string, opt GenerateOptions) (Reply, error) {
	if c.m == nil {
		// The zero value, or one decoded from JSON into a new
		// Conversation: no model to reply with.
		return Reply{}, errors.New("chat: the conversation has no model: make it with Model.NewConversation (and set its Messages, or json.Unmarshal into it, to resume a saved one)")
	}
	if err := c.m.ready("chat"); err != nil {
		return Reply{}, err
	}
	if err := start(ctx, opt); err != nil {
		return Reply{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := opt.MaxNewTokens
	if want <= 0 {
		want = 64
	}
	turns := append(slices.Clone(c.Messages), Message{Role: "user", Content: user})
	dropped := 0
	var ids []int
	for {
		var err error
		if ids, err = c.m.chatPrompt(ctx, c.withSystem(turns), opt); err != nil {
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
	opt.Seed = TurnSeed(opt.Seed, c.replies)
	r, err := c.m.generate(ctx, ids, opt, c.m.chatStops())
	r.DroppedTurns = dropped
	if err != nil {
		return r, err
	}
	c.replies++
	c.Messages = append(turns, Message{Role: "assistant", Content: strings.TrimSpace(r.Text)})
	return r, nil
}

func (c *Conversation) withSystem(turns []Message) []Message {
	if c.System == "" {
		return turns
	}
	return append([]Message{{Role: "system", Content: c.System}}, turns...)
}
