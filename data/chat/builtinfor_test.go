package chat

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
)

// TestBuiltinFor picks the built-in template from a tokenizer's special
// tokens (the real families' tokenizers are checked in data/tokenizer's
// TestFamilyBuiltinFor; Phi-4-mini's is not here, so its markers are
// checked on a small tokenizer).
func TestBuiltinFor(t *testing.T) {
	cases := []struct {
		tokens []string
		want   string
	}{
		{[]string{"<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"}, "phi4"},
		{[]string{"<|user|>", "<|assistant|>", "<|end|>", "<s>"}, "phi3"},
		{[]string{"<|im_start|>", "<|im_end|>"}, "chatml"},
		{[]string{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}, "llama3"},
		{[]string{"<bos>", "<start_of_turn>", "<end_of_turn>"}, "gemma"},
		{[]string{"<|user|>", "<|assistant|>"}, ""},
		{[]string{"<s>", "</s>"}, ""},
	}
	for _, c := range cases {
		var added []string
		for i, s := range c.tokens {
			added = append(added, fmt.Sprintf(`{"id": %d, "content": %q, "special": true}`, i+1, s))
		}
		js := `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [` + strings.Join(added, ", ") + `]}`
		tok, err := tokenizer.FromJSON([]byte(js), nil)
		if err != nil {
			t.Fatalf("%v: %v", c.tokens, err)
		}
		got, ok := BuiltinFor(tok)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%v: BuiltinFor = %q, %v; want %q", c.tokens, got, ok, c.want)
		}
	}
}
