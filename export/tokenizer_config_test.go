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
// numbers stay as written and special tokens unescaped; a file without a
// template, or with the same one, is copied byte for byte.
func TestTokenizerConfigTemplate(t *testing.T) {
	const tmpl = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"
	for _, c := range []struct{ name, in, want string }{
		{"string", `{"model_max_length": 1000000000000000019884624838656, "chat_template": "old", "eos_token": "<|im_end|>"}`, "replaced"},
		{"named", `{"chat_template": [{"name": "default", "template": "old"}, {"name": "tool_use", "template": "tools"}]}`, "replaced"},
		{"none", `{"eos_token": "<|im_end|>",  "padding_side": "left"}`, "same"},
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
