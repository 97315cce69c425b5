package ftune

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestConversationLongMessageError: a message too long for the context
// was said to take its tokens "with the system message" when there was
// none; the error names the system message only when there is one.
func TestConversationLongMessageError(t *testing.T) {
	m := tinyModel(t)
	long := strings.Repeat("iron and gold ", 600)
	for system, want := range map[string]string{
		"":          "this message takes",
		"Be brief.": "this message with the system message takes",
	} {
		_, err := m.NewConversation(system).Send(context.Background(), long, GenerateOptions{MaxNewTokens: 4})
		if !errors.Is(err, ErrContextFull) || !strings.Contains(err.Error(), want) {
			t.Errorf("system %q: %v, want ErrContextFull saying %q", system, err, want)
		}
	}
}
