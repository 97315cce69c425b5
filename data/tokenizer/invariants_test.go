package tokenizer

import "unicode/utf8"

// extraTexts are strings without HF goldens (multilingual, emoji, whitespace
// runs, special tokens inside text, bad-looking but valid input), used for
// invariants and for comparisons with reference implementations.
var extraTexts = []string{
	"Grüße aus München! Ça va? ¿Qué tal?",
	"Привет, мир! Как дела?",
	"مرحبا بالعالم",
	"你好，世界！今天天气很好。",
	"한국어 텍스트와 日本語のテキスト",
	"हिन्दी पाठ",
	"👨‍👩‍👧‍👦 family 🇫🇷 flag ❤️ 🤖🤖",
	"tabs\t\tand\r\nwindows newlines\n\n\n",
	"    leading and trailing    ",
	"a  b   c    d     e      f",
	"x" + string(make([]byte, 0)) + "                                                  y",
	"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
	"text<|endoftext|>more <|endoftext|> spaced",
	"<s>[INST] hi [/INST] ok</s>",
	"The 3rd of 12,345,678 items cost $9.99 (approx.)",
	"CamelCaseIdentifier snake_case_identifier kebab-case",
	"e\u0301 vs \u00e9 and A\u030a",
	"ﬁ ligature ① Ⅻ ２０２４",
	"'S 'T 'Re 'VE 'LL 'D don't",
	"\u00a0nbsp and\u3000ideographic space",
	"line1\nline2\n  indented\n\tTabbed\n",
	"<|im_start|><|im_start|><|im_end|>",
	"<|im_start",
	"unicode \u2028 separators \u2029 here",
	"\x00\x01 control \x7f chars",
	"1234567890 000 12 1",
	"x/y/z a//b ?!... --- ***",
}

func isValid(s string) bool { return utf8.ValidString(s) }
