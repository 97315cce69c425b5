package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// generationTemplate is a chat template in SmolLM3's shape, written for
// these tests: ChatML turns after a system header with the date, the
// assistant's turns wrapped in {% generation %} on lines of their own.
const generationTemplate = `{#- A chat template in SmolLM3's shape. -#}
{%- set ns = namespace(system="", turns=0) -%}
{%- if messages[0].role == "system" -%}
{%- set ns.system = messages[0].content.replace("/think", "").strip() -%}
{%- endif -%}
<|im_start|>system
## Metadata

Today Date: {{ strftime_now("%d %B %Y") }}
{% if ns.system %}

## Custom Instructions

{{ ns.system }}
{% endif %}
<|im_end|>
{% for message in messages %}
{%- set content = message.content if message.content is string else "" -%}
{%- if message.role == "user" -%}
{{ "<|im_start|>user\n" + content + "<|im_end|>\n" }}
{%- elif message.role == "assistant" -%}
{%- set ns.turns = ns.turns + 1 -%}
{% generation %}
{{ "<|im_start|>assistant\n" + content.lstrip("\n") + "<|im_end|>\n" }}
{% endgeneration %}
{%- endif -%}
{% endfor %}
{%- if add_generation_prompt -%}
{{ "<|im_start|>assistant\n" }}
{%- endif -%}
`

var generationConversation = []Message{
	{Role: "system", Content: "Be brief. /think"},
	{Role: "user", Content: "Capital of France?"},
	{Role: "assistant", Content: "\n\nParis."},
	{Role: "user", Content: "And Spain?"},
}

// renderToday renders with the date strftime_now gives, retried once
// when the day changed during the rendering.
func renderToday(t *testing.T, tpl *Template, msgs []Message, gen bool) (got, date string) {
	t.Helper()
	for range 2 {
		date = strftime(time.Now(), "%d %B %Y")
		out, err := tpl.Render(msgs, gen)
		if err != nil {
			t.Fatal(err)
		}
		if date == strftime(time.Now(), "%d %B %Y") {
			return out, date
		}
	}
	t.Fatal("the date keeps changing")
	return "", ""
}

// TestGenerationBlock: SmolLM3's template failed to compile ("ControlStructure
// 'generation' not found"). The block renders its body as transformers
// does; the expected text is Jinja's (3.1) with transformers' extension,
// including the blank line that the newline before {% endgeneration %}
// leaves inside the body.
func TestGenerationBlock(t *testing.T) {
	tpl, err := New("smol.jinja", generationTemplate, "", "<|im_end|>")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []bool{false, true} {
		got, date := renderToday(t, tpl, generationConversation, gen)
		want := "<|im_start|>system\n## Metadata\n\nToday Date: " + date + "\n\n## Custom Instructions\n\nBe brief.\n<|im_end|>\n" +
			"<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n\n" +
			"<|im_start|>user\nAnd Spain?<|im_end|>\n"
		if gen {
			want += "<|im_start|>assistant\n"
		}
		if got != want {
			t.Errorf("add_generation_prompt=%v:\n got %q\nwant %q", gen, got, want)
		}
	}
}

// TestGenerationBlockIsTransparent: the template renders as it does with
// the block replaced by one that is plainly transparent, {% if true %}
// with the same whitespace control (deleting the tag lines would not do:
// in Jinja too the newline before {% endgeneration %} is body text, which
// the {%- endif -%} after it would then strip). Whitespace control on the
// tags, nesting in for and if, nested blocks and loop variables behave as
// for any block; the outputs are Jinja's.
func TestGenerationBlockIsTransparent(t *testing.T) {
	transparent := func(src string) string {
		return strings.NewReplacer(" generation ", " if true ", " endgeneration ", " endif ").Replace(src)
	}
	cases := []struct{ src, want string }{
		{generationTemplate, ""},
		{"x {%- generation -%} \n y \n {%- endgeneration -%} z", "xyz"},
		{"x\n  {% generation %}\n  y\n  {% endgeneration %}\nz", "x\n  y\nz"},
		{"x {%+ generation +%} y {% endgeneration %} z", "x  y  z"},
		{"{% for m in messages %}{% if m.role == 'assistant' %}[{% generation %}{{ m.content }}{% generation %}!{% endgeneration %}{% endgeneration %}]{% endif %}{% endfor %}", "[\n\nParis.!]"},
		{"{% for m in messages %}{% generation %}{{ loop.index }}{{ m.role[0] }}{% endgeneration %}{% endfor %}", "1s2u3a4u"},
	}
	for _, c := range cases {
		tpl, err := New("t.jinja", c.src, "", "")
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		plain, err := New("t.jinja", transparent(c.src), "", "")
		if err != nil {
			t.Fatal(err)
		}
		got, date := renderToday(t, tpl, generationConversation, true)
		want, _ := renderToday(t, plain, generationConversation, true)
		if date == "" || got != want {
			t.Errorf("%q:\n got %q\nwant %q", c.src, got, want)
		}
		if c.want != "" && got != c.want {
			t.Errorf("%q: got %q, want %q", c.src, got, c.want)
		}
	}
}

// TestGenerationBlockScope: transformers compiles the block as a call
// block, whose body is a macro: a set inside it stays inside, a
// namespace's attribute changes outside too (Jinja renders "212").
func TestGenerationBlockScope(t *testing.T) {
	tpl, err := New("t.jinja", "{% set x = 1 %}{% set ns = namespace(y=1) %}{% generation %}{% set x = 2 %}{% set ns.y = 2 %}{{ x }}{% endgeneration %}{{ x }}{{ ns.y }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tpl.Render(conversation, false); err != nil || got != "212" {
		t.Errorf("got %q %v, want 212", got, err)
	}
}

// TestGenerationBlockErrors: a block left open, or closed where none is
// open, is a parse error naming the template and the line, and saying
// which tag is wrong where gonja would say only "not found".
func TestGenerationBlockErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"a\n{% generation %}\nb\n", `line 2 col 15 near "generation": generation block not closed`},
		{"a\n{% for m in messages %}\n{% generation %}\nb\n{% endfor %}\n", `line 5 col 4 near "endfor": endfor inside the generation block opened at line 3, which is not closed`},
		{"a\nb\n{% endgeneration %}\n", `line 3 col 18 near "endgeneration": endgeneration closes no generation block`},
		{"{% generation %}{% for m in messages %}{% endgeneration %}{% endfor %}", `line 1 col 57 near "endgeneration": endgeneration closes no generation block`},
		{"{% generation x %}b{% endgeneration %}", `line 1 col 15 near "x": generation takes no arguments`},
		{"{% generation %}b{% endgeneration x %}", `line 1 col 35 near "x": endgeneration takes no arguments`},
	}
	for _, c := range cases {
		_, err := New("t.jinja", c.src, "", "")
		var te *TemplateError
		if !errors.As(err, &te) || te.Name != "t.jinja" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want a TemplateError of t.jinja with %q", c.src, err, c.want)
		}
	}
}

// TestGenerationBlockBudget: the body is part of the compiled tree, so the
// render budget and the operator guards reach inside it.
func TestGenerationBlockBudget(t *testing.T) {
	small := Limits{MaxOutput: 1 << 20, MaxValue: 1 << 20, MaxSteps: 100_000, Timeout: 5 * time.Second, MaxMemory: 64 << 20}
	cases := []struct{ src, want string }{
		{"{% generation %}{% for i in range(100000000) %}x{% endfor %}{% endgeneration %}", "loop iterations"},
		{"{% for m in messages %}{% generation %}{{ 'x' * 100000000 }}{% endgeneration %}{% endfor %}", "string * integer"},
		{"{% generation %}{% for i in range(20000) %}{{ 'y' * 100 }}{% endfor %}{% endgeneration %}", "output longer"},
		{"{% generation %}{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{% endgeneration %}", "~"},
	}
	for _, c := range cases {
		tpl := limited(t, c.src, small)
		_, err := tpl.Render(conversation, false)
		if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hostile.jinja") {
			t.Errorf("%q: got %v, want an ErrBudget naming the template and %q", c.src, err, c.want)
		}
	}
}

// TestStrReplace: str.replace is Python's; gonja's required the count
// that SmolLM3's template leaves out ("missing required 3rd positional
// argument"). Outputs are Python's.
func TestStrReplace(t *testing.T) {
	for src, want := range map[string]string{
		`{{ "a /think b/think".replace("/think", "") }}`: "a  b",
		`{{ "aaa".replace("a", "b", 2) }}`:               "bba",
		`{{ "aaa".replace("a", "b", -1) }}`:              "bbb",
		`{{ "ab".replace("", "-") }}`:                    "-a-b-",
	} {
		tpl, err := New("t.jinja", src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.Render(conversation, false); err != nil || got != want {
			t.Errorf("%s: got %q %v, want %q", src, got, err, want)
		}
	}
}
