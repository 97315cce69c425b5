package chat

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ftune/ftune/data/tokenizer"
)

// builtin is a template for tokenizers that carry none, with the special
// tokens of the model family it belongs to.
type builtin struct {
	source   string
	bos, eos string
	// endOfTurn is the token that ends each turn (Template.EndOfTurn);
	// "" when that is eos_token (Llama-2, Mistral, Alpaca).
	endOfTurn string
}

// The sources follow the templates the families published (Hugging Face
// tokenizer_config.json files), trimmed of tool-calling branches.
var builtins = map[string]builtin{
	// ChatML: Qwen, tiny-base and many fine-tunes.
	"chatml": {
		source: "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
			"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
		eos: "<|im_end|>", endOfTurn: "<|im_end|>",
	},
	// Meta Llama-3 / 3.1 instruct (without the tool and date header).
	"llama3": {
		source: "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}" +
			"{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
			"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
		bos: "<|begin_of_text|>", eos: "<|eot_id|>", endOfTurn: "<|eot_id|>",
	},
	// Llama-2 chat: [INST] turns, the system prompt inside the first one.
	"llama2": {
		source: "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
			"{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
			"{% for message in loop_messages %}" +
			"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
			"{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}" +
			"{% else %}{% set content = message['content'] %}{% endif %}" +
			"{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
			"{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
		bos: "<s>", eos: "</s>",
	},
	// Mistral-7B-Instruct v0.1/v0.2: user/assistant only.
	"mistral": {
		source: "{{ bos_token }}{% for message in messages %}" +
			"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
			"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
			"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}" +
			"{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
		bos: "<s>", eos: "</s>",
	},
	// Gemma 3 instruct (google/gemma-3 tokenizer_config.json, without the
	// image branch): a system message is put before the first user turn,
	// assistant turns are "model", contents are trimmed. Gemma 2's own
	// template is the same except that it refuses a system message.
	"gemma": {
		source: "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}" +
			"{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}" +
			"{%- for message in loop_messages -%}" +
			"{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}{%- endif -%}" +
			"{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}" +
			"{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}" +
			"{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}",
		bos: "<bos>", eos: "<end_of_turn>", endOfTurn: "<end_of_turn>",
	},
	// Phi-3 / Phi-3.5-mini instruct: <|role|> headers on their own line,
	// <|end|> after each turn, EOS after the last when no prompt follows.
	"phi3": {
		source: "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}" +
			"{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}" +
			"{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}" +
			"{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
		bos: "<s>", eos: "<|endoftext|>", endOfTurn: "<|end|>",
	},
	// Phi-4-mini instruct (without the tools branch): <|role|> headers
	// with no newline, <|end|> after each turn.
	"phi4": {
		source: "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}" +
			"{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}",
		bos: "<|endoftext|>", eos: "<|endoftext|>", endOfTurn: "<|end|>",
	},
	// Stanford Alpaca's instruction format, with its default preamble when
	// there is no system message.
	"alpaca": {
		source: "{% if messages[0]['role'] != 'system' %}{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' }}{% endif %}" +
			"{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}" +
			"{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}" +
			"{% elif message['role'] == 'assistant' %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}{% endfor %}" +
			"{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}",
	},
}

// BuiltinNames lists the built-in templates.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns a built-in template (chatml, llama3, llama2, mistral,
// gemma, phi3, phi4, alpaca) with its family's special tokens; WithTokens
// replaces them.
func Builtin(name string) (*Template, error) {
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("chat: no built-in template %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return New("builtin:"+name, b.source, b.bos, b.eos)
}

// EndOfTurn is the token a built-in template ends each turn with, which
// ends the model's reply too: ChatML's <|im_end|>, Llama-3's <|eot_id|>,
// Gemma's <end_of_turn>, Phi's <|end|>, and eos_token for the templates
// that end turns with it (Llama-2, Mistral, Alpaca). It is "" for a
// template from a model folder, whose generation_config.json lists the
// ids that end its turns, and for any template whose source is not a
// built-in's.
func (t *Template) EndOfTurn() string {
	name, ok := strings.CutPrefix(t.name, "builtin:")
	b, known := builtins[name]
	if !ok || !known || b.source != t.source {
		return ""
	}
	if b.endOfTurn == "" {
		return t.eosToken
	}
	return b.endOfTurn
}

// builtinMarkers are the special tokens that say which built-in template
// a tokenizer's family was trained on, most specific first.
var builtinMarkers = []struct {
	name   string
	tokens []string
}{
	{"gemma", []string{"<start_of_turn>", "<end_of_turn>"}},
	{"llama3", []string{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
	{"chatml", []string{"<|im_start|>", "<|im_end|>"}},
	// Phi-3 keeps Llama-2's <s>; Phi-4-mini's o200k vocabulary has none.
	{"phi3", []string{"<|user|>", "<|assistant|>", "<|end|>", "<s>"}},
	{"phi4", []string{"<|user|>", "<|assistant|>", "<|end|>"}},
}

// BuiltinFor names the built-in template of the family whose special
// tokens tok has (Gemma's <start_of_turn>, Llama-3's headers, ChatML's
// <|im_start|>, Phi's <|user|>/<|assistant|>/<|end|>), for a model folder
// that ships no template; ok is false when none matches.
func BuiltinFor(tok *tokenizer.Tokenizer) (name string, ok bool) {
	for _, m := range builtinMarkers {
		all := true
		for _, s := range m.tokens {
			if _, has := tok.TokenToID(s); !has {
				all = false
				break
			}
		}
		if all {
			return m.name, true
		}
	}
	return "", false
}

// DefaultFor is the template for a model folder that ships none: its
// family's built-in (BuiltinFor), or ChatML when no family is recognised.
// name says which, for the caller to print.
func DefaultFor(tok *tokenizer.Tokenizer) (t *Template, name string, err error) {
	name, ok := BuiltinFor(tok)
	if !ok {
		name = "chatml"
	}
	t, err = Builtin(name)
	return t, name, err
}

// WithTokens returns a copy of t that renders bos_token and eos_token as
// given (for a built-in template used with a tokenizer whose tokens differ).
func (t *Template) WithTokens(bos, eos string) *Template {
	c := *t
	c.bosToken, c.eosToken = bos, eos
	return &c
}

// strftime formats t with the C directives chat templates use for dates
// (Llama-3.1's "Today Date: {{ strftime_now('%d %b %Y') }}").
func strftime(t time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			sb.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			sb.WriteString(t.Format("2006"))
		case 'y':
			sb.WriteString(t.Format("06"))
		case 'm':
			sb.WriteString(t.Format("01"))
		case 'd':
			sb.WriteString(t.Format("02"))
		case 'H':
			sb.WriteString(t.Format("15"))
		case 'I':
			sb.WriteString(t.Format("03"))
		case 'M':
			sb.WriteString(t.Format("04"))
		case 'S':
			sb.WriteString(t.Format("05"))
		case 'p':
			sb.WriteString(t.Format("PM"))
		case 'B':
			sb.WriteString(t.Format("January"))
		case 'b':
			sb.WriteString(t.Format("Jan"))
		case 'A':
			sb.WriteString(t.Format("Monday"))
		case 'a':
			sb.WriteString(t.Format("Mon"))
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
