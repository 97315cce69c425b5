package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/export/gguf"
)

// toolExamples are function-calling conversations in memory: a call with
// its arguments, the tool's result, the answer it leads to.
func toolExamples() []Example {
	tools := json.RawMessage(`[{"type": "function", "function": {"name": "element", "description": "Looks up a chemical element.", "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}}}]`)
	var out []Example
	for _, e := range [][3]string{{"Fe", "iron, 26", "Fe is iron."}, {"Au", "gold, 79", "Au is gold."}, {"Cu", "copper, 29", "Cu is copper."}} {
		out = append(out, Example{Tools: tools, Messages: []Message{
			{Role: "user", Content: "What is " + e[0] + "?"},
			{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "call_" + e[0], Name: "element", Arguments: `{"symbol": "` + e[0] + `"}`}}},
			{Role: "tool", ToolCallID: "call_" + e[0], Name: "element", Content: e[1]},
			{Role: "assistant", Content: e[2]},
		}})
	}
	return out
}

// TestFineTuneToolCalls: function-calling examples held in memory train
// through a template that writes tool calls (Qwen2.5's), and are refused,
// naming the template and what it drops, through one that does not
// (tiny-base's ChatML); a chat given tools on that template is refused
// too rather than answering without them.
func TestFineTuneToolCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny-base")
	}
	cfg := DefaultConfig()
	cfg.Data.Template = filepath.Join("data", "chat", "testdata", "tools", "Qwen-Qwen2.5-7B-Instruct.jinja")
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength = 2, 2, 512
	cfg.Training.Eval.Generation.Questions, cfg.Training.Eval.Generation.Samples = 0, 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = t.TempDir(), "tools"
	var log strings.Builder
	res, err := FineTune(context.Background(), toolExamples(), cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Steps != 2 {
		t.Errorf("%d steps, want 2", res.Steps)
	}
	checkAdapterTemplate(t, res.Adapters["default"], cfg.Data.Template)
	// Evaluating the adapter with its run's settings renders with the copy
	// it carries, not the data.template file, which may have changed since.
	run, _, err := AdapterRunConfig(res.Adapters["default"])
	if err != nil || run == nil {
		t.Fatalf("the run's config for the adapter: %v", err)
	}
	if want := filepath.Join(res.Adapters["default"], chat.TemplateFile); run.Data.Template != want {
		t.Errorf("the run's config for the adapter: data.template %q, want %q", run.Data.Template, want)
	}

	// Outside its run folder (no run config to name the template), the
	// adapter is evaluated with the template it carries, as it is loaded.
	moved := filepath.Join(t.TempDir(), "adapter")
	if err := os.CopyFS(moved, os.DirFS(res.Adapters["default"])); err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for _, ex := range toolExamples() {
		b, err := json.Marshal(ex)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	data := filepath.Join(t.TempDir(), "calls.jsonl")
	if err := os.WriteFile(data, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	evalCfg := DefaultConfig()
	evalCfg.Data.Files, evalCfg.Data.MaxLength = []string{data}, 512
	var evalLog strings.Builder
	if _, err := Evaluate(context.Background(), EvaluateOptions{Adapter: moved, Config: evalCfg, Log: &evalLog}); err != nil {
		t.Fatalf("%v\n%s", err, evalLog.String())
	}
	if !strings.Contains(evalLog.String(), "chat template: the adapter's "+filepath.Join(moved, chat.TemplateFile)) {
		t.Errorf("evaluation of a moved adapter: %s", evalLog.String())
	}

	plain := DefaultConfig()
	plain.Training.MaxSteps, plain.Training.BatchSize, plain.Data.MaxLength = 2, 2, 512
	plain.Training.Tracking.OutputDir, plain.Training.Tracking.RunName = t.TempDir(), "plain"
	_, err = FineTune(context.Background(), toolExamples(), plain, nil)
	if !errors.Is(err, prep.ErrNoToolSupport) || !strings.Contains(err.Error(), "the called function's name") {
		t.Errorf("tool calls through a template without them: got %v", err)
	}

	m, err := Load("tiny-base", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex := toolExamples()[0]
	_, err = m.Chat(context.Background(), ex.Messages[:1], GenerateOptions{MaxNewTokens: 2, Tools: ex.Tools})
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "does not show tools") {
		t.Errorf("chat with tools on a template without them: got %v", err)
	}
	for _, bad := range []string{`{"a": 1}`, `[1, 2]`} {
		if _, err := m.Chat(context.Background(), ex.Messages[:1], GenerateOptions{MaxNewTokens: 2, Tools: json.RawMessage(bad)}); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "want a") {
			t.Errorf("tools %s: got %v", bad, err)
		}
	}
	// Calls and results in the history that ChatML would drop are refused
	// too, as training refuses them.
	if _, err := m.Chat(context.Background(), ex.Messages[:3], GenerateOptions{MaxNewTokens: 2}); !errors.Is(err, ErrInvalidInput) || !errors.Is(err, prep.ErrNoToolSupport) {
		t.Errorf("tool calls in the history on ChatML: got %v", err)
	}
}

// TestFineTunePreferencesToolCalls: DPO on a tool call preferred over an
// answer made up without it trains through Qwen2.5's template, and is
// refused through ChatML, which would drop the call from the chosen reply.
func TestFineTunePreferencesToolCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny-base")
	}
	var prefs []Preference
	for _, ex := range toolExamples() {
		prefs = append(prefs, Preference{Tools: ex.Tools, Prompt: ex.Messages[:1], Chosen: ex.Messages[1:2], Rejected: []Message{{Role: "assistant", Content: "I do not know."}}})
	}
	cfg := DefaultConfig()
	cfg.Data.Template = filepath.Join("data", "chat", "testdata", "tools", "Qwen-Qwen2.5-7B-Instruct.jinja")
	cfg.Training.MaxSteps, cfg.Training.BatchSize, cfg.Data.MaxLength, cfg.Data.ValSplit = 2, 2, 512, 0
	cfg.Training.Checkpointing.Monitor, cfg.Training.Checkpointing.TopK = "", 0
	cfg.Training.Tracking.OutputDir, cfg.Training.Tracking.RunName = t.TempDir(), "dpo-tools"
	var log strings.Builder
	res, err := FineTunePreferences(context.Background(), prefs, cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Steps != 2 {
		t.Errorf("%d steps, want 2", res.Steps)
	}
	plain := DefaultConfig()
	plain.Training.MaxSteps, plain.Training.BatchSize, plain.Data.MaxLength, plain.Data.ValSplit = 2, 2, 512, 0
	plain.Training.Checkpointing.Monitor, plain.Training.Checkpointing.TopK = "", 0
	plain.Training.Tracking.OutputDir, plain.Training.Tracking.RunName = t.TempDir(), "dpo-plain"
	if _, err := FineTunePreferences(context.Background(), prefs, plain, nil); !errors.Is(err, prep.ErrNoToolSupport) {
		t.Errorf("DPO tool calls through ChatML: got %v", err)
	}
}

// TestChatWithTools: GenerateOptions.Tools reach the prompt through a
// template that shows them (Qwen2.5's, set on tiny-base), with the
// conversation's earlier calls and results; CheckTools refuses them, right
// after loading, on one that does not.
func TestChatWithTools(t *testing.T) {
	m, err := Load("tiny-base", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex := toolExamples()[0]
	ctx := context.Background()
	if err := m.CheckTools(ctx, ex.Tools); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("CheckTools on ChatML: got %v", err)
	}
	if err := m.CheckTools(ctx, nil); err != nil {
		t.Errorf("CheckTools without tools: %v", err)
	}
	src, err := os.ReadFile(filepath.Join("data", "chat", "testdata", "tools", "Qwen-Qwen2.5-7B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Template, err = chat.New("qwen2.5", string(src), "", "<|im_end|>"); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckTools(ctx, ex.Tools); err != nil {
		t.Fatalf("CheckTools on Qwen2.5's template: %v", err)
	}
	ids, err := m.chatPrompt(ctx, ex.Messages[:3], GenerateOptions{Tools: ex.Tools})
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := m.Tokenizer.Decode(ids, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name": "element", "description": "Looks up a chemical element."`, `{"name": "element", "arguments": {"symbol": "Fe"}}`, "<tool_response>\niron, 26\n</tool_response>"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, prompt)
		}
	}
	if _, err := m.Chat(ctx, ex.Messages[:3], GenerateOptions{MaxNewTokens: 2, Tools: ex.Tools}); err != nil {
		t.Errorf("Chat with tools: %v", err)
	}
	// An empty list is no tools: the prompt is the one without them.
	none, err := m.chatPrompt(ctx, ex.Messages[:1], GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if empty, err := m.chatPrompt(ctx, ex.Messages[:1], GenerateOptions{Tools: json.RawMessage("[]")}); err != nil || !slices.Equal(empty, none) {
		t.Errorf("tools []: %v, a prompt of %d ids where none gives %d", err, len(empty), len(none))
	}
	bad := slices.Clone(ex.Messages[:3])
	bad[1].ToolCalls = []chat.ToolCall{{Name: "element", Arguments: "[1]"}}
	if _, err := m.Chat(ctx, bad, GenerateOptions{MaxNewTokens: 2}); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "expected a JSON object") {
		t.Errorf("arguments that are not an object: got %v", err)
	}
}

// checkAdapterTemplate: an adapter trained through the template file
// tmplFile carries it (chat_template.jinja) and is prompted with it when
// loaded, and its PEFT, merged and GGUF exports carry it too (they all
// took the base's: the model was exported to be prompted in a format it
// was not trained on).
func checkAdapterTemplate(t *testing.T, adapter, tmplFile string) {
	t.Helper()
	want, err := os.ReadFile(tmplFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(adapter, chat.TemplateFile)); err != nil || string(got) != string(want) {
		t.Fatalf("the adapter's chat_template.jinja: %v, %.60q", err, got)
	}
	var log strings.Builder
	m, err := Load("", LoadOptions{Adapter: adapter, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if m.Template.Source() != string(want) || !strings.Contains(log.String(), "chat template: the adapter's") {
		t.Errorf("loaded with the template %q; log %q", m.Template.Name(), log.String())
	}
	out := t.TempDir()
	ctx := context.Background()
	if _, err := m.Export(ctx, filepath.Join(out, "peft"), ExportOptions{Format: FormatPEFT}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Export(ctx, filepath.Join(out, "merged"), ExportOptions{Format: FormatMerged}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"peft", "merged"} {
		if got, err := os.ReadFile(filepath.Join(out, f, chat.TemplateFile)); err != nil || string(got) != string(want) {
			t.Errorf("the %s export's chat_template.jinja: %v, %.60q", f, err, got)
		}
	}
	if _, err := m.Export(ctx, filepath.Join(out, "m.gguf"), ExportOptions{Format: FormatGGUF, Quant: "f32"}); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Read(filepath.Join(out, "m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if v, ok := g.Get("tokenizer.chat_template"); !ok || v != string(want) {
		t.Errorf("the GGUF's tokenizer.chat_template: %.60q", v)
	}
}
