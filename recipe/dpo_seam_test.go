package recipe

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestDPOPromptEndingInSpace: a text prompt whose trailing space merges
// with the completion's first word (Qwen3's tokenizer) keeps every token
// of each completion: the pair is the tokens of prompt + completion, cut
// where the prompt's tokens stop matching, and the warning says so. TRL
// cuts at the prompt's token count, which lost "yes"/"no" whole (the two
// completions were then the same EOS) and the first word of longer ones.
func TestDPOPromptEndingInSpace(t *testing.T) {
	tp := familyText(t, "qwen3")
	for _, tc := range []struct{ prompt, chosen, rejected string }{
		{"Is the sky blue? Answer: ", "yes", "no"},
		{"Is the sky blue? Answer: ", "Yes, it is blue.", "No, it is green."},
		{"The capital of Peru is", " Lima.", " Cusco."}, // a clean seam: TRL's cut
	} {
		ex := format.Example{Text: tc.prompt, Chosen: &format.Reply{Text: tc.chosen}, Rejected: &format.Reply{Text: tc.rejected}, Source: "p.jsonl:1"}
		var log bytes.Buffer
		pairs, _, err := tokenizePairs(context.Background(), tp, []format.Example{ex}, 0, false, &log)
		if err != nil {
			t.Fatalf("%q: %v", tc.chosen, err)
		}
		p := pairs[0]
		prompt, _ := tp.encode(tc.prompt, true)
		for _, c := range []struct {
			text string
			ids  []int32
		}{{tc.chosen, p.Chosen}, {tc.rejected, p.Rejected}} {
			full, _ := tp.encode(tc.prompt+c.text, true)
			full = append(full, tp.eos)
			if got := append(slices.Clone(p.Prompt), c.ids...); !slices.Equal(got, int32s(full)) {
				t.Errorf("%q: prompt + completion %v, want the tokens of the whole %v", c.text, got, full)
			}
			ids := make([]int, len(c.ids))
			for i, id := range c.ids {
				ids[i] = int(id)
			}
			text, _ := tp.tok.Decode(ids, true)
			if !strings.Contains(text, c.text) {
				t.Errorf("completion decodes to %q, which lacks %q", text, c.text)
			}
		}
		clean := len(p.Prompt) == len(prompt)
		if warned := strings.Contains(log.String(), "1 preference record: the prompt's last tokens merge"); warned == clean {
			t.Errorf("%q: clean seam %v, log %q", tc.prompt, clean, log.String())
		}
	}
}
