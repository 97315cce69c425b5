package prep

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// countingRenderer is a Renderer that adds up the bytes it writes.
type countingRenderer struct {
	Renderer
	bytes *int
}

func (c countingRenderer) Render(msgs []format.Message, gen bool) (string, error) {
	s, err := c.Renderer.Render(msgs, gen)
	*c.bytes += len(s)
	return s, err
}

// TestPrefixSpansBudget: the renderings of a conversation up to each
// assistant turn stop once they have written more than the record's
// budget, 32 times its length and 64 MiB (1,000 messages of 2 KB, a 2 MB
// record, rendered 1 GB of prefixes: an 11 MB record took 35 s), with
// a record-limit error that skip_bad skips and that says what to do; a
// conversation as many messages long but short stays under the 64 MiB
// floor and is placed as before.
func TestPrefixSpansBudget(t *testing.T) {
	conversation := func(n, size int) []format.Message {
		var pairs []string
		for i := 0; i < n/2; i++ {
			pairs = append(pairs, "user", strings.Repeat("q", size), "assistant", strings.Repeat("a", size))
		}
		return msgs(pairs...)
	}
	rendered := 0
	r := countingRenderer{chatML{}, &rendered}
	p := &Preprocessor{Enc: byteEncoder{}, Tmpl: r}

	long := conversation(1000, 2048)
	full, err := r.Render(long, false)
	if err != nil {
		t.Fatal(err)
	}
	rendered = 0
	_, err = p.prefixSpans(long, "", full)
	if !errors.Is(err, ErrRecordLimit) || !strings.Contains(err.Error(), "set train_on_inputs") {
		t.Fatalf("1,000 messages of 2 KB: %v, want a record-limit error", err)
	}
	// Past the budget by at most the last rendering (the record's length).
	if budget := prefixRenderBudget(len(full)); rendered > budget+len(full)+64 {
		t.Errorf("rendered %d bytes, budget %d", rendered, budget)
	}

	short := conversation(1000, 16)
	if full, err = r.Render(short, false); err != nil {
		t.Fatal(err)
	}
	spans, err := p.prefixSpans(short, "", full)
	if err != nil || len(spans) != 500 {
		t.Fatalf("1,000 short messages: %d spans, %v; want 500", len(spans), err)
	}
	for _, s := range spans {
		if got := full[s.start:s.end]; got != strings.Repeat("a", 16)+"<|im_end|>\n" {
			t.Fatalf("span %v holds %q", s, got)
		}
	}
}
