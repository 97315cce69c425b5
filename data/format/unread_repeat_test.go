package format

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUnreadTextRepeatLinear: whether a field holds every text a record's
// mapping reads is decided in time linear in the record: it searched the
// field once per message, and 16,000 messages beside a 16 MB field whose
// match came at its end took 12 to 18 s (ftune data validate). A field that
// holds the texts in their order is a repeat however large; one that
// holds them out of order past repeatScanBudget of searching is taken to
// be unread (refused, not dropped); a few texts out of order (a system
// prompt written first) are still a repeat.
func TestUnreadTextRepeatLinear(t *testing.T) {
	const n = 16_000
	pad := strings.Repeat("b", 4<<20) + " "
	record := func(content func(i int) string, notes string) map[string]any {
		msgs := make([]any, n)
		for i := range msgs {
			role := "user"
			if i%2 == 1 {
				role = "assistant"
			}
			msgs[i] = map[string]any{"role": role, "content": content(i)}
		}
		return map[string]any{"messages": msgs, "notes": notes}
	}
	same := func(int) string { return "a" }
	distinct := func(i int) string { return fmt.Sprintf("m%d.", i) }
	var inOrder, reversed strings.Builder
	for i := range n {
		inOrder.WriteString(distinct(i) + " ")
		reversed.WriteString(distinct(n-1-i) + " ")
	}
	for _, c := range []struct {
		name   string
		f      map[string]any
		unread bool
	}{
		{"one text, matched at the field's end", record(same, pad+"a"), false},
		{"distinct texts in order at the field's end", record(distinct, pad+inOrder.String()), false},
		{"distinct texts in order, one missing", record(distinct, pad+strings.Replace(inOrder.String(), "m15998. ", "", 1)), true},
		{"distinct texts out of order past the budget", record(distinct, pad+reversed.String()), true},
		{"a field that is none of them", record(distinct, pad), true},
	} {
		m, err := Detect(c.f)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := m.unreadText(c.f)
		took := time.Since(start)
		if want := []string(nil); c.unread {
			want = []string{"notes"}
			if !slices.Equal(got, want) {
				t.Errorf("%s: unread %q, want %q", c.name, got, want)
			}
		} else if len(got) > 0 {
			t.Errorf("%s: unread %q, want none (a repeat)", c.name, got)
		}
		// About 50 ms of CPU each (copying the field, mostly; 0.1-0.25 s
		// of wall time on a loaded 2-core machine); a search a message
		// took 3 to 5 s on all but the first case. 2 s leaves load room.
		if took > 2*time.Second {
			t.Errorf("%s: took %v", c.name, took)
		}
	}
}

// TestUnreadTextRepeatOrder: a rendering with its read texts out of
// order within the budget is a repeat, and texts repeated in a record
// are checked once.
func TestUnreadTextRepeatOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		f    map[string]any
		want []string
	}{
		{"a system prompt written before the conversation", map[string]any{
			"messages": []any{map[string]any{"role": "user", "content": "Q"}, map[string]any{"role": "assistant", "content": "A"}},
			"system":   "Be brief.",
			"text":     "<sys>Be brief.</sys><user>Q</user><assistant>A</assistant>",
		}, nil},
		{"alpaca's output written first", map[string]any{
			"instruction": "Add", "input": "2 and 3", "output": "5",
			"text": "5 is the answer to: Add 2 and 3",
		}, nil},
		{"the same answer twice, once written", map[string]any{
			"messages": []any{map[string]any{"role": "user", "content": "Q1"}, map[string]any{"role": "assistant", "content": "ok"}, map[string]any{"role": "user", "content": "Q2"}, map[string]any{"role": "assistant", "content": "ok"}},
			"text":     "Q1 ok Q2",
		}, nil},
		{"one text not written", map[string]any{
			"instruction": "Add", "input": "2 and 3", "output": "5",
			"text": "Add 2 and 3",
		}, []string{"text"}},
		{"part of a read text (ultrachat_200k's prompt)", map[string]any{
			"messages": []any{map[string]any{"role": "user", "content": "Capital of Peru? Say it."}, map[string]any{"role": "assistant", "content": "Lima"}},
			"prompt":   "Capital of Peru?",
		}, nil},
	} {
		m, err := Detect(c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.unreadText(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: unread %q, want %q", c.name, got, c.want)
		}
	}
}
