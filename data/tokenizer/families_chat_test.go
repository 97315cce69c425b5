package tokenizer_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
)

// familyChatCase is one case of a family's chat_golden.json: a
// conversation, its template variables and either the reference rendering
// (with its ids when the family's tokenizer is here) or the error the
// template raised.
type familyChatCase struct {
	Name                string         `json:"name"`
	Messages            []chat.Message `json:"messages"`
	AddGenerationPrompt bool           `json:"add_generation_prompt"`
	Kwargs              map[string]any `json:"kwargs"`
	Text                *string        `json:"text"`
	IDs                 *[]int         `json:"ids"`
	Error               string         `json:"error"`
}

// TestFamilyChatTemplates renders each family's real chat template on the
// conversations of gen/conversations.json and compares with
// @huggingface/jinja's renderings (and tokenizers.js's ids of them).
func TestFamilyChatTemplates(t *testing.T) {
	for _, dir := range familyDirs(t, "chat_golden.json", "gemma2", "gemma3", "phi3", "phi4-mini", "qwen3") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var golden struct {
				BOS   string           `json:"bos_token"`
				EOS   string           `json:"eos_token"`
				Cases []familyChatCase `json:"cases"`
			}
			if !readJSON(t, filepath.Join(dir, "chat_golden.json"), &golden) {
				t.Fatalf("%s: no chat_golden.json", dir)
			}
			tpl, tok := familyTemplate(t, dir, golden.BOS, golden.EOS)
			for _, c := range golden.Cases {
				t.Run(c.Name, func(t *testing.T) {
					got, err := tpl.RenderWith(context.Background(), c.Messages, chat.RenderOptions{AddGenerationPrompt: c.AddGenerationPrompt, Vars: c.Kwargs})
					if c.Error != "" {
						if err == nil || !strings.Contains(err.Error(), c.Error) {
							t.Fatalf("want the template's error %q, got %q, %v", c.Error, got, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if c.Text == nil {
						t.Fatal("golden case without text or error")
					}
					if got != *c.Text {
						t.Fatalf("render\n got %q\nwant %q", got, *c.Text)
					}
					if c.IDs == nil {
						return
					}
					if tok == nil {
						t.Fatal("golden has ids but the family folder has no tokenizer")
					}
					enc, err := tok.Encode(got, false)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(enc.IDs, *c.IDs) {
						t.Errorf("ids of rendering\n got %v\nwant %v", enc.IDs, *c.IDs)
					}
				})
			}
		})
	}
}

// familyTemplate loads a family's template the way ftune loads a model
// folder's (chat.Load: chat_template.jinja, else tokenizer_config.json),
// and its tokenizer when the folder has one. A folder with only a
// chat_template.jinja gets the golden's special tokens.
func familyTemplate(t *testing.T, dir, bos, eos string) (*chat.Template, *tokenizer.Tokenizer) {
	t.Helper()
	_, errTok := os.Stat(filepath.Join(dir, "tokenizer.json.zst"))
	_, errFrom := os.Stat(filepath.Join(dir, "tokenizer_from"))
	if errTok != nil && errFrom != nil {
		src, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := chat.New(filepath.Join(dir, "chat_template.jinja"), string(src), bos, eos)
		if err != nil {
			t.Fatal(err)
		}
		return tpl, nil
	}
	tpl, err := chat.Load(materializeFamily(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return tpl, loadFamilyTokenizer(t, dir)
}

// TestFamilyBuiltins checks the built-in templates of the families (for
// model folders that ship none) against the real templates' goldens:
// "gemma" against Gemma 3's, "phi3" against Phi-3.5's, "phi4" against
// Phi-4-mini's, on every conversation (errors included).
func TestFamilyBuiltins(t *testing.T) {
	for builtin, family := range map[string]string{"gemma": "gemma3", "phi3": "phi3", "phi4": "phi4-mini"} {
		t.Run(builtin, func(t *testing.T) {
			var golden struct {
				Cases []familyChatCase `json:"cases"`
			}
			if !readJSON(t, filepath.Join(familiesRoot, family, "chat_golden.json"), &golden) {
				t.Fatalf("no chat_golden.json for %s", family)
			}
			tpl, err := chat.Builtin(builtin)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range golden.Cases {
				got, err := tpl.RenderWith(context.Background(), c.Messages, chat.RenderOptions{AddGenerationPrompt: c.AddGenerationPrompt, Vars: c.Kwargs})
				switch {
				case c.Error != "":
					if err == nil || !strings.Contains(err.Error(), c.Error) {
						t.Errorf("%s: want the error %q, got %q, %v", c.Name, c.Error, got, err)
					}
				case err != nil:
					t.Errorf("%s: %v", c.Name, err)
				case got != *c.Text:
					t.Errorf("%s:\n got %q\nwant %q", c.Name, got, *c.Text)
				}
			}
		})
	}
}

// TestFamilyBuiltinFor checks that each family's real tokenizer names its
// family's built-in template (for folders that ship none), and that
// tokenizers without a family's markers get none.
func TestFamilyBuiltinFor(t *testing.T) {
	want := map[string]string{"qwen3": "chatml", "gemma3": "gemma", "gemma2": "gemma", "phi3": "phi3", "phi4-mini": "", "mistral": ""}
	for family, name := range want {
		tok := loadFamilyTokenizer(t, filepath.Join(familiesRoot, family))
		got, ok := chat.BuiltinFor(tok)
		if got != name || ok != (name != "") {
			t.Errorf("%s: BuiltinFor = %q, %v; want %q", family, got, ok, name)
		}
	}
}
