package format

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestManyToolCallsCheckInLinearTime: an assistant message of n calls
// answered by n tool messages is checked in time linear in n (each result
// scanned every call, and each call the calls before it: 200,000 calls
// took 94 s), with the same findings: a repeated id names both calls, an
// unknown id is refused, and the error lists ten of the ids, not all
// 200,000 (2.9 MB).
func TestManyToolCallsCheckInLinearTime(t *testing.T) {
	const n = 200_000
	conversation := func() []Message {
		calls := make([]ToolCall, n)
		msgs := []Message{{Role: RoleUser, Content: "go"}, {Role: RoleAssistant}}
		for i := range calls {
			id := fmt.Sprintf("call_%d", i)
			calls[i] = ToolCall{ID: id, Name: "f", Arguments: "{}"}
			msgs = append(msgs, Message{Role: RoleTool, ToolCallID: id, Content: "ok"})
		}
		msgs[1].ToolCalls = calls
		return msgs
	}
	msgs := conversation()
	start := time.Now()
	_, answered, err := checkMessages(msgs)
	// Bound: 5 times what the whole test takes here (0.9 s).
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("checking %d calls and their results took %v", n, took)
	}
	if err != nil || !answered {
		t.Fatalf("%d answered calls: answered %t, %v", n, answered, err)
	}

	msgs[1].ToolCalls[n-1].ID = "call_7"
	if _, _, err := checkMessages(msgs); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), fmt.Sprintf("message 1, tool calls 7 and %d have the same id \"call_7\"", n-1)) {
		t.Errorf("a repeated id: %v", err)
	}

	msgs = conversation()
	msgs[len(msgs)-1].ToolCallID = "call_none"
	_, _, err = checkMessages(msgs)
	if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), `answers tool call "call_none", which is none of the calls of message 1`) {
		t.Fatalf("an unknown id: %v", err)
	}
	if msg := err.Error(); len(msg) > 1000 || !strings.Contains(msg, fmt.Sprintf(`"call_9" and %d more`, n-10)) {
		t.Errorf("the error lists the ids as %d bytes: %.300s", len(msg), msg)
	}
}
