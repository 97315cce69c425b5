package export

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenizerConfigTemplate: a merged export replaces the base's chat
// template in tokenizer_config.json too (a string, or the default entry of
// named templates), for readers that do not read chat_template.jinja;
// numbers stay as written and special tokens unescaped; a file with the
// same template is copied byte for byte (one without a template gets it:
// TestTokenizerConfigKeepsLayout).
func TestTokenizerConfigTemplate(t *testing.T) {
	const tmpl = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"
	for _, c := range []struct{ name, in, want string }{
		{"string", `{"model_max_length": 1000000000000000019884624838656, "chat_template": "old", "eos_token": "<|im_end|>"}`, "replaced"},
		{"named", `{"chat_template": [{"name": "default", "template": "old"}, {"name": "tool_use", "template": "tools"}]}`, "replaced"},
		{"same", `{"chat_template": "` + strings.ReplaceAll(tmpl, `"`, `\"`) + `"}`, "same"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "in.json")
			if err := os.WriteFile(src, []byte(c.in), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			out := t.TempDir()
			note, err := writeTokenizerConfig(baseFile{name: "tokenizer_config.json", path: src, f: f}, out, tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(out, "tokenizer_config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "same" {
				if string(got) != c.in || note != "" {
					t.Errorf("changed: %s (note %q)", got, note)
				}
				return
			}
			if note == "" || strings.Contains(string(got), `\u003c`) {
				t.Errorf("note %q, written %s", note, got)
			}
			var cfg map[string]any
			d := json.NewDecoder(strings.NewReader(string(got)))
			d.UseNumber()
			if err := d.Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			switch v := cfg["chat_template"].(type) {
			case string:
				if v != tmpl || cfg["model_max_length"].(json.Number).String() != "1000000000000000019884624838656" {
					t.Errorf("written %s", got)
				}
			case []any:
				if v[0].(map[string]any)["template"] != tmpl || v[1].(map[string]any)["template"] != "tools" {
					t.Errorf("written %s", got)
				}
			default:
				t.Errorf("written %s", got)
			}
		})
	}
}

// TestTokenizerConfigKeepsLayout: replacing the chat template changes
// only its value: the keys stay in the order written (not sorted), numbers
// as written (an integer past float64's precision, a float with a
// trailing zero), the layout and a chat_template key nested in another
// object as they were; a file without a template gets one, after its last
// key, on a line of its own in an indented file; a list of named
// templates without a default entry gets one at its end.
func TestTokenizerConfigKeepsLayout(t *testing.T) {
	const tmpl = "{% for m in messages %}<|im_start|>{{ m.content }}\n{% endfor %}"
	enc := `"{% for m in messages %}<|im_start|>{{ m.content }}\n{% endfor %}"`
	const head = "{\n  \"zeta\": 1,\n  \"model_max_length\": 1000000000000000019884624838656,\n  \"temperature\": 0.70,\n" +
		"  \"extra\": {\"chat_template\": \"inner\", \"b\": 1e-7},\n"
	for _, c := range []struct{ name, in, want string }{
		{"string",
			head + "  \"chat_template\": \"old\",\n  \"eos_token\": \"<|im_end|>\",\n  \"added_tokens_decoder\": {}\n}\n",
			head + "  \"chat_template\": " + enc + ",\n  \"eos_token\": \"<|im_end|>\",\n  \"added_tokens_decoder\": {}\n}\n"},
		{"null", `{"b": 2, "chat_template": null, "a": 1}`, `{"b": 2, "chat_template": ` + enc + `, "a": 1}`},
		{"named",
			`{"b": 0.5, "chat_template": [{"template": "old", "name": "default"}, {"name": "tool_use", "template": "tools"}], "a": 1}`,
			`{"b": 0.5, "chat_template": [{"template": ` + enc + `, "name": "default"}, {"name": "tool_use", "template": "tools"}], "a": 1}`},
		{"named without default",
			`{"chat_template": [ {"name": "tool_use", "template": "tools"} ], "a": 1}`,
			`{"chat_template": [ {"name": "tool_use", "template": "tools"} ,{"name": "default", "template": ` + enc + `}], "a": 1}`},
		{"none", head + "  \"eos_token\": \"<|im_end|>\"\n}\n",
			head + "  \"eos_token\": \"<|im_end|>\",\n  \"chat_template\": " + enc + "\n}\n"},
		{"none, compact", `{"b":1,"a":2}`, `{"b":1,"a":2,"chat_template": ` + enc + `}`},
		{"empty", "{ }", `{ "chat_template": ` + enc + ` }`},
	} {
		t.Run(c.name, func(t *testing.T) {
			note, got := writeTokenizerConfigText(t, c.in, tmpl)
			if got != c.want || note == "" {
				t.Errorf("written (note %q):\n%s\nwant:\n%s", note, got, c.want)
			}
			var v any
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}

// TestTokenizerConfigRefused: a tokenizer_config.json that is not one
// JSON object is refused, naming the file and what was expected; text
// after the object too, as Python's json.load refuses it, and a repeated
// chat_template.
func TestTokenizerConfigRefused(t *testing.T) {
	for _, in := range []string{`[1, 2]`, `{"a": 1`, `"x"`, ``, `{"a": 1} {"b": 2}`, `{"chat_template": [1,]}`,
		`{"chat_template": "first", "a": 1, "chat_template": "old"}`} { // Python reads the last, sjson would edit the first
		dir := t.TempDir()
		src := filepath.Join(dir, "tokenizer_config.json")
		if err := os.WriteFile(src, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = writeTokenizerConfig(baseFile{name: "tokenizer_config.json", path: src, f: f}, t.TempDir(), "t")
		f.Close()
		if err == nil || !strings.Contains(err.Error(), src) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// writeTokenizerConfigText runs writeTokenizerConfig on a file holding in
// and returns its note and what it wrote.
func writeTokenizerConfigText(t *testing.T, in, tmpl string) (note, out string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tokenizer_config.json")
	if err := os.WriteFile(src, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	note, err = writeTokenizerConfig(baseFile{name: "tokenizer_config.json", path: src, f: f}, dir, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return note, string(b)
}
