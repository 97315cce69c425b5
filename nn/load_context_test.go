package nn

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// afterCalls is a context whose Err is nil for its first n calls and
// context.Canceled after: cancelled part way through a load.
type afterCalls struct {
	context.Context
	n int
}

func (c *afterCalls) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestLoadContextStopsBetweenTensors: a load whose context is done stops
// before the next tensor, naming it, with an error wrapping the
// context's; it read every tensor before (an 8B model's 16 GB after the
// Ctrl-C), and a context that is never done loads the model whole.
func TestLoadContextStopsBetweenTensors(t *testing.T) {
	const dir = "../testdata/fixtures/llama-tiny"
	ctx := &afterCalls{Context: context.Background(), n: 3}
	m, err := LoadContext(ctx, dir, LoadOptions{})
	if m != nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped before tensor") {
		t.Fatalf("cancelled after 3 tensors: %v, %v; want stopped before the fourth", m, err)
	}
	if m, err := LoadContext(context.Background(), dir, LoadOptions{}); err != nil || m == nil {
		t.Fatalf("not cancelled: %v", err)
	}
}
