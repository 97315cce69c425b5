package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type goldenCase struct {
	Messages            []Message `json:"messages"`
	AddGenerationPrompt bool      `json:"add_generation_prompt"`
	Text                string    `json:"text"`
}

// TestGoldenRenderings renders the transformers goldens byte for byte, for
// a template inside tokenizer_config.json (qwen3) and in its own file
// (tiny-base).
func TestGoldenRenderings(t *testing.T) {
	for _, dir := range []string{"qwen3", "tiny-base"} {
		t.Run(dir, func(t *testing.T) {
			tpl, err := Load(filepath.Join("testdata", dir))
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("testdata", dir, "chat_template_golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g struct{ Cases []goldenCase }
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			if len(g.Cases) == 0 {
				t.Fatal("no cases")
			}
			for i, c := range g.Cases {
				got, err := tpl.Render(c.Messages, c.AddGenerationPrompt)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				if got != c.Text {
					t.Errorf("case %d:\n got %q\nwant %q", i, got, c.Text)
				}
			}
		})
	}
}

var conversation = []Message{
	{Role: "system", Content: "Be brief."},
	{Role: "user", Content: "Capital of France?"},
	{Role: "assistant", Content: "Paris."},
	{Role: "user", Content: "And Spain?"},
}

// TestBuiltins compares each built-in template with the format its family
// published, written out by hand.
func TestBuiltins(t *testing.T) {
	cases := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"chatml", conversation, true,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n" +
				"<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nAnd Spain?<|im_end|>\n<|im_start|>assistant\n"},
		{"llama3", conversation, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nCapital of France?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nAnd Spain?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama2", conversation, false,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nCapital of France? [/INST] Paris. </s><s>[INST] And Spain? [/INST]"},
		{"mistral", conversation[1:], false,
			"<s>[INST] Capital of France? [/INST]Paris.</s>[INST] And Spain? [/INST]"},
		{"alpaca", conversation[1:2], true,
			"Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
				"### Instruction:\nCapital of France?\n\n### Response:\n"},
		{"alpaca", conversation[:3], false,
			"Be brief.\n\n### Instruction:\nCapital of France?\n\n### Response:\nParis.\n\n"},
	}
	for _, c := range cases {
		tpl, err := Builtin(c.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.Render(c.msgs, c.gen)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if _, err := Builtin("vicuna"); err == nil || !strings.Contains(err.Error(), "chatml") {
		t.Errorf("unknown builtin: %v", err)
	}
	tpl, _ := Builtin("llama3")
	got, err := tpl.WithTokens("<BOS>", "<EOS>").Render(conversation[1:2], false)
	if err != nil || !strings.HasPrefix(got, "<BOS><|start_header_id|>") {
		t.Errorf("WithTokens: %q %v", got, err)
	}
}

func TestRenderErrors(t *testing.T) {
	tpl, err := Builtin("chatml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Render([]Message{{Role: "user", Content: "hi"}, {Role: "robot", Content: "beep"}}, false)
	if !errors.Is(err, ErrUnknownRole) || !strings.Contains(err.Error(), "message 1") || !strings.Contains(err.Error(), "robot") {
		t.Errorf("unknown role: %v", err)
	}
	// The template's own raise_exception becomes a TemplateError with its text.
	l2, _ := Builtin("llama2")
	_, err = l2.Render([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, false)
	var te *TemplateError
	if !errors.As(err, &te) || !strings.Contains(te.Message, "Conversation roles must alternate") {
		t.Errorf("raise_exception: %v", err)
	}
	if _, err := New("broken", "{% for m in messages %}{{ m }", "", ""); err == nil {
		t.Error("syntax error not reported")
	} else if !errors.As(err, &te) || te.Name != "broken" {
		t.Errorf("syntax error: %v", err)
	}
	bad, err := New("bad-call", "{{ messages[0]['content'].nosuchmethod() }}", "", "")
	if err == nil {
		if _, err := bad.Render(conversation, false); err == nil {
			t.Error("calling a missing method rendered")
		}
	}
}

func TestLoadLayouts(t *testing.T) {
	tpl, err := Load("testdata/list")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(conversation[1:3], false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<s>[user] Capital of France?</s>[assistant] Paris.</s>"; got != want {
		t.Errorf("list layout: got %q want %q", got, want)
	}
	if _, err := Load("testdata/none"); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("no template: %v", err)
	}
	if _, err := Load("testdata/missing-dir"); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("missing folder: %v", err)
	}
	tiny, err := Load("testdata/tiny-base")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(tiny.Name(), "chat_template.jinja") || tiny.Hash() == tpl.Hash() {
		t.Errorf("name %q / hash", tiny.Name())
	}
}

// TestConcurrentRender: a Template is used by data loaders in parallel.
func TestConcurrentRender(t *testing.T) {
	tpl, err := Load("testdata/qwen3")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tpl.Render(conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if got, err := tpl.Render(conversation, true); err != nil || got != want {
					errs <- got
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent render differs: %q", e)
	}
}

func TestStrftime(t *testing.T) {
	tm := mustTime(t, "2024-07-26T09:05:03Z")
	if got := strftime(tm, "%d %b %Y %H:%M:%S %% %j %A %p"); got != "26 Jul 2024 09:05:03 % 208 Friday AM" {
		t.Errorf("strftime: %q", got)
	}
}

// TestRunawayRecursion: a macro calling itself forever would overflow the
// stack (fatal in Go); it must end in an error instead. Bounded recursion
// still works.
func TestRunawayRecursion(t *testing.T) {
	tpl, err := New("recursive", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(conversation, false); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("runaway recursion: %v", err)
	}
	tpl, err = New("countdown", "{% macro f(n) %}{{ n }}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(conversation, false); err != nil || got != "543210" {
		t.Errorf("bounded recursion: %q %v", got, err)
	}
}

func TestNoLoaderStatements(t *testing.T) {
	for _, src := range []string{`{% include "/template" %}`, `{% import "/template" as x %}`, `{% extends "/template" %}`, `{% from "/template" import f %}`} {
		if _, err := New("loader", src, "", ""); err == nil || !strings.Contains(err.Error(), "not available") {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// TestSelfReferenceAttacks: templates from a model folder must not be able
// to crash the process through unbounded recursion in the engine.
func TestSelfReferenceAttacks(t *testing.T) {
	for _, src := range []string{
		"{% block b %}{{ self.b() }}{% endblock %}",
		"{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}",
		"{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.y = b %}{{ a }}",
		"{% set a = namespace() %}{% set a.l = [1, a] %}{{ a }}",
		"{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
	} {
		tpl, err := New("attack", src, "", "")
		if err != nil {
			continue // rejected when compiled: fine
		}
		if out, err := tpl.Render(conversation, false); err == nil {
			t.Errorf("%s rendered %q", src, out)
		}
	}
	// Namespaces used normally still work (Qwen3's template relies on them).
	tpl, err := New("ns", "{% set ns = namespace(n=0, l=[]) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(conversation, false); err != nil || got != "4" {
		t.Errorf("namespace counter: %q %v", got, err)
	}
}
