package chat

import (
	"strings"
	"testing"
)

// TestBuiltinEndOfTurn: only ChatML's <|im_end|> stopped generation, so a
// chat rendered with the built-in gemma, llama3 or phi3 template ran on
// past its turn. Each built-in now names the token it ends a turn with,
// and that token is what its rendering puts right after an assistant
// message.
func TestBuiltinEndOfTurn(t *testing.T) {
	want := map[string]string{
		"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>",
		"phi3": "<|end|>", "phi4": "<|end|>",
		"llama2": "</s>", "mistral": "</s>", "alpaca": "</s>", // their eos_token
	}
	for _, name := range BuiltinNames() {
		tmpl, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "alpaca" {
			tmpl = tmpl.WithTokens("<s>", "</s>") // it has no special tokens of its own
		}
		eot := tmpl.EndOfTurn()
		if eot != want[name] {
			t.Errorf("%s: EndOfTurn() = %q, want %q", name, eot, want[name])
			continue
		}
		out, err := tmpl.Render([]Message{{Role: "user", Content: "Symbol of iron?"}, {Role: "assistant", Content: "Fe"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Fe"+eot) && !strings.Contains(out, "Fe "+eot) {
			t.Errorf("%s renders %q: the assistant's turn does not end with %s", name, out, eot)
		}
	}
	// A template of a model folder declares none (its
	// generation_config.json lists its end-of-turn ids), and neither does
	// one that took a built-in's name with another source.
	for _, tc := range []struct{ name, source string }{
		{"chat_template.jinja", builtins["gemma"].source},
		{"builtin:gemma", builtins["chatml"].source},
	} {
		tmpl, err := New(tc.name, tc.source, "<bos>", "<eos>")
		if err != nil {
			t.Fatal(err)
		}
		if eot := tmpl.EndOfTurn(); eot != "" {
			t.Errorf("%s with another source: EndOfTurn() = %q, want none", tc.name, eot)
		}
	}
	// WithTokens keeps the built-in's: an eos_token of the tokenizer
	// replaces the one a Llama-2 turn ends with.
	tmpl, _ := Builtin("llama2")
	if eot := tmpl.WithTokens("<s>", "<|end_of_text|>").EndOfTurn(); eot != "<|end_of_text|>" {
		t.Errorf("llama2 WithTokens(<s>, <|end_of_text|>): EndOfTurn() = %q, want <|end_of_text|>", eot)
	}
}
