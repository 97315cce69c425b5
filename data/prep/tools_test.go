package prep

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/format"
)

// toolTemplate renders with one of the real tool-calling templates of
// data/chat's testdata/tools (their renderings are checked against
// transformers' there), tools and the date passed as the run passes them.
func toolTemplate(t *testing.T, name, bos, eos string) ToolRenderer {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "chat", "testdata", "tools", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := chat.New(name, string(src), bos, eos)
	if err != nil {
		t.Fatal(err)
	}
	return ToolRenderFunc(func(ctx context.Context, ms []format.Message, tools string, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID, Name: m.Name}
			for _, c := range m.ToolCalls {
				cm[i].ToolCalls = append(cm[i].ToolCalls, chat.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
			}
		}
		return tpl.RenderWith(ctx, cm, chat.RenderOptions{AddGenerationPrompt: gen, Tools: tools, Vars: map[string]any{"date_string": "07 Dec 2026"}})
	})
}

const weatherTools = `[{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]`

func weatherCall() []format.Message {
	return []format.Message{
		user("Weather in Paris?"),
		{Role: format.RoleAssistant, ToolCalls: []format.ToolCall{{ID: "a1b2c3d4e", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: format.RoleTool, ToolCallID: "a1b2c3d4e", Name: "get_weather", Content: "18 C, clear"},
		assistant("It is 18 C.", ""),
		user("And in Rome?"),
		{Role: format.RoleAssistant, Content: "Checking.", ToolCalls: []format.ToolCall{{ID: "b1b2c3d4e", Name: "get_weather", Arguments: `{"city": "Rome"}`}}},
		{Role: format.RoleTool, ToolCallID: "b1b2c3d4e", Name: "get_weather", Content: "21 C, sun"},
		assistant("It is 21 C.", ""),
	}
}

// TestToolCallLabels: in a tool-calling conversation, each assistant
// turn is learnt whole, its calls as the template writes them (the
// arguments re-printed by tojson, Llama's "parameters") with its end of
// turn, and nothing of the tool results, the questions or the tool list.
func TestToolCallLabels(t *testing.T) {
	tests := []struct {
		template, bos, eos string
		msgs               []format.Message
		want               string // learnt runs, "|" between them
	}{
		{"Qwen-Qwen2.5-7B-Instruct", "", "<|im_end|>", weatherCall(),
			"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n|It is 18 C.<|im_end|>\n|" +
				"Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><|im_end|>\n|It is 21 C.<|im_end|>\n"},
		{"Qwen-Qwen3-0.6B", "", "<|im_end|>", weatherCall(),
			"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n|It is 18 C.<|im_end|>\n|" +
				"Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><|im_end|>\n|<think>\n\n</think>\n\nIt is 21 C.<|im_end|>\n"},
		{"meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>", weatherCall(),
			"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>|It is 18 C.<|eot_id|>|" +
				"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}<|eot_id|>|It is 21 C.<|eot_id|>"},
		{"mistralai-Mistral-Nemo-Instruct-2407", "<s>", "</s>", weatherCall()[:4],
			"[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"a1b2c3d4e\"}]</s>|It is 18 C.</s>"},
	}
	for _, tc := range tests {
		t.Run(tc.template, func(t *testing.T) {
			p := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: toolTemplate(t, tc.template, tc.bos, tc.eos), EOS: fakeEOT, Opts: Options{NoEOS: true}}
			tok, _, err := p.Tokenize(format.Example{Messages: tc.msgs, Tools: weatherTools, Source: "calls.jsonl:1"})
			if err != nil {
				t.Fatal(err)
			}
			if got := learntRuns(tok); got != tc.want {
				t.Errorf("learnt\n got %q\nwant %q", got, tc.want)
			}
			full := fakeDecode(tok.IDs)
			if !strings.Contains(full, `"description": "Weather in a city."`) {
				t.Errorf("the tool list is not in the rendering: %q", full)
			}
		})
	}
}

// TestToolCallingRefusedWhereTheTemplateDropsIt: a template without tool
// branches (ChatML as tiny-base has it) would train answers without the
// calls that produced them, or calls to tools the model never saw: such
// records are refused, naming what the template leaves out.
func TestToolCallingRefusedWhereTheTemplateDropsIt(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "chat", "testdata", "tiny-base", "chat_template.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := chat.New("chat_template.jinja", string(src), "", "<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	plain := ToolRenderFunc(func(ctx context.Context, ms []format.Message, tools string, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content}
		}
		return tpl.RenderWith(ctx, cm, chat.RenderOptions{AddGenerationPrompt: gen, Tools: tools})
	})
	p := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: plain, EOS: fakeEOT, TemplateName: "chat_template.jinja"}
	_, _, err = p.Tokenize(format.Example{Messages: weatherCall()[:4], Source: "calls.jsonl:3"})
	if !errors.Is(err, ErrNoToolSupport) || !strings.Contains(err.Error(), "calls.jsonl:3") ||
		!strings.Contains(err.Error(), "the called function's name and the call's arguments") {
		t.Errorf("tool calls: got %v", err)
	}
	_, _, err = p.Tokenize(format.Example{Messages: []format.Message{user("Hi"), assistant("Hello", "")}, Tools: weatherTools, Source: "calls.jsonl:4"})
	if !errors.Is(err, ErrNoToolSupport) || !strings.Contains(err.Error(), "list of tools") {
		t.Errorf("tools: got %v", err)
	}
	if _, _, err := p.Tokenize(format.Example{Messages: []format.Message{user("Hi"), assistant("Hello", "")}, Source: "calls.jsonl:5"}); err != nil {
		t.Errorf("a record without tools: %v", err)
	}
	// A call written in the answer's text, its result a tool message:
	// ChatML writes tool messages, a template that skips them is refused.
	inText := []format.Message{user("Weather?"), assistant(`<tool_call>{"name": "get_weather"}</tool_call>`, ""), {Role: format.RoleTool, Content: "18 C"}, assistant("18 C.", "")}
	if _, _, err := p.Tokenize(format.Example{Messages: inText, Source: "calls.jsonl:6"}); err != nil {
		t.Errorf("a tool result after a call in the text, on ChatML: %v", err)
	}
	skips, err := chat.New("skips-tools.jinja", "{% for m in messages %}{% if m.role != 'tool' %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", "", "<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	r := &Preprocessor{Enc: byteOffsetEncoder{}, EOS: fakeEOT, TemplateName: "skips-tools.jinja", Tmpl: ToolRenderFunc(func(ctx context.Context, ms []format.Message, tools string, gen bool) (string, error) {
		cm := make([]chat.Message, len(ms))
		for i, m := range ms {
			cm[i] = chat.Message{Role: m.Role, Content: m.Content}
		}
		return skips.RenderWith(ctx, cm, chat.RenderOptions{AddGenerationPrompt: gen})
	})}
	if _, _, err := r.Tokenize(format.Example{Messages: inText, Source: "calls.jsonl:7"}); !errors.Is(err, ErrNoToolSupport) || !strings.Contains(err.Error(), "leaves out tool messages") {
		t.Errorf("a template that skips tool messages: got %v", err)
	}
	// A renderer that cannot take tools at all.
	q := &Preprocessor{Enc: byteOffsetEncoder{}, Tmpl: chatML{}, EOS: fakeEOT}
	if _, _, err := q.Tokenize(format.Example{Messages: []format.Message{user("Hi"), assistant("Hello", "")}, Tools: weatherTools}); err == nil || !strings.Contains(err.Error(), "cannot show them") {
		t.Errorf("renderer without tools: got %v", err)
	}
}

// TestSuffixPrefix: the longest end of a that b begins with, as trying
// every end finds it (on random strings over a small alphabet, where ends
// and beginnings overlap often), and in linear time where trying every end
// of a 4 MiB run of one letter took quadratic time.
func TestSuffixPrefix(t *testing.T) {
	slow := func(a, b string) int {
		for k := 0; k < len(a); k++ {
			if strings.HasPrefix(b, a[k:]) {
				return len(a) - k
			}
		}
		return 0
	}
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = "ab"[r.IntN(2)]
		}
		return string(b)
	}
	for range 20000 {
		a, b := word(), word()
		if got, want := suffixPrefix(a, b), slow(a, b); got != want {
			t.Fatalf("suffixPrefix(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
	// Each end of a matches b up to its last byte: n²/2 byte comparisons
	// when the ends are tried one by one (64 KiB: 29 ms here, so about two
	// minutes for these 4 MiB).
	long := strings.Repeat("a", 4<<20)
	start := time.Now()
	if got := suffixPrefix(long+"c", long+"b"); got != 0 {
		t.Errorf("long: %d, want 0", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("4 MiB took %v", d)
	}
}
