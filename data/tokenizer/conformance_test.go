package tokenizer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
)

// goldenCase is one case of golden.json; a nil field is absent from the
// golden and skipped by name, a present one is always checked.
type goldenCase struct {
	Text       string    `json:"text"`
	IDs        *[]int    `json:"ids"`
	IDsSpecial *[]int    `json:"ids_special"`
	Tokens     *[]string `json:"tokens"`
	Offsets    *[][2]int `json:"offsets"`
	Decoded    *string   `json:"decoded"`
}

type chatCase struct {
	Messages            []chat.Message `json:"messages"`
	AddGenerationPrompt bool           `json:"add_generation_prompt"`
	Text                *string        `json:"text"`
	IDs                 *[]int         `json:"ids"`
}

// tokenizerDirs lists testdata/* and every folder under $FTUNE_TOKENIZERS
// that holds a tokenizer.json.
func tokenizerDirs(t *testing.T) []string {
	var dirs []string
	roots := []string{"testdata"}
	if env := os.Getenv("FTUNE_TOKENIZERS"); env != "" {
		roots = append(roots, env)
	}
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatalf("read %s: %v", root, err)
		}
		for _, e := range entries {
			dir := filepath.Join(root, e.Name())
			if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); e.IsDir() && err == nil {
				dirs = append(dirs, dir)
			}
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("no tokenizer folders found")
	}
	return dirs
}

func readJSON(t *testing.T, path string, v any) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return true
}

// TestTokenizer checks every tokenizer folder against its goldens exactly.
func TestTokenizer(t *testing.T) {
	for _, dir := range tokenizerDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var golden struct {
				Cases []goldenCase `json:"cases"`
			}
			if readJSON(t, filepath.Join(dir, "golden.json"), &golden) {
				for i, c := range golden.Cases {
					t.Run(itoa(i), func(t *testing.T) { checkCase(t, tok, c) })
				}
			}
			// A second implementation's output for more strings (see
			// testdata/README.md): ids, tokens and decoded text, no offsets.
			var js struct {
				Cases []goldenCase `json:"cases"`
			}
			if readJSON(t, filepath.Join(dir, "golden_tokenizersjs.json"), &js) {
				for i, c := range js.Cases {
					t.Run("tokenizersjs/"+itoa(i), func(t *testing.T) { checkCase(t, tok, c) })
				}
			}
			// Ids only, for ~1,400 corpus lines and random strings: one
			// subtest reporting the first differences.
			var corpus struct {
				Cases []goldenCase `json:"cases"`
			}
			if readJSON(t, filepath.Join(dir, "golden_tokenizersjs_corpus.json"), &corpus) {
				t.Run("tokenizersjs-corpus", func(t *testing.T) { checkIDs(t, tok, corpus.Cases) })
			}
			var chatGolden struct {
				Cases []chatCase `json:"cases"`
			}
			if !readJSON(t, filepath.Join(dir, "chat_template_golden.json"), &chatGolden) {
				return
			}
			tpl, err := chat.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range chatGolden.Cases {
				t.Run("chat/"+itoa(i), func(t *testing.T) { checkChat(t, tok, tpl, c) })
			}
		})
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func checkCase(t *testing.T, tok *tokenizer.Tokenizer, c goldenCase) {
	for name, absent := range map[string]bool{"ids": c.IDs == nil, "ids_special": c.IDsSpecial == nil,
		"tokens": c.Tokens == nil, "offsets": c.Offsets == nil, "decoded": c.Decoded == nil} {
		if absent {
			t.Logf("%s: absent from the golden, not checked", name)
		}
	}
	enc, err := tok.Encode(c.Text, false)
	if err != nil {
		t.Fatalf("Encode(%q): %v", c.Text, err)
	}
	if c.IDs != nil && !reflect.DeepEqual(enc.IDs, *c.IDs) {
		t.Errorf("%q: ids\n got %v\nwant %v", c.Text, enc.IDs, *c.IDs)
	}
	if c.Tokens != nil && !reflect.DeepEqual(enc.Tokens, *c.Tokens) {
		t.Errorf("%q: tokens\n got %q\nwant %q", c.Text, enc.Tokens, *c.Tokens)
	}
	if c.Offsets != nil && !reflect.DeepEqual(enc.Offsets, *c.Offsets) {
		t.Errorf("%q: offsets\n got %v\nwant %v", c.Text, enc.Offsets, *c.Offsets)
	}
	if c.IDsSpecial != nil {
		sp, err := tok.Encode(c.Text, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sp.IDs, *c.IDsSpecial) {
			t.Errorf("%q: ids with special tokens\n got %v\nwant %v", c.Text, sp.IDs, *c.IDsSpecial)
		}
	}
	if c.Decoded != nil {
		ids := enc.IDs
		if c.IDs != nil {
			ids = *c.IDs // decode the golden ids, so a wrong encode does not hide here
		}
		got, err := tok.Decode(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != *c.Decoded {
			t.Errorf("decode %v\n got %q\nwant %q", ids, got, *c.Decoded)
		}
	}
}

func checkIDs(t *testing.T, tok *tokenizer.Tokenizer, cases []goldenCase) {
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	bad := 0
	for _, c := range cases {
		for _, special := range []bool{false, true} {
			want := c.IDs
			if special {
				want = c.IDsSpecial
			}
			if want == nil {
				continue
			}
			enc, err := tok.Encode(c.Text, special)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(enc.IDs, *want) && len(enc.IDs)+len(*want) > 0 {
				if bad++; bad <= 5 {
					t.Errorf("%q (special=%v):\n got %v\nwant %v", c.Text, special, enc.IDs, *want)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d encodings differ", bad, 2*len(cases))
	}
}

func checkChat(t *testing.T, tok *tokenizer.Tokenizer, tpl *chat.Template, c chatCase) {
	got, err := tpl.Render(c.Messages, c.AddGenerationPrompt)
	if err != nil {
		t.Fatal(err)
	}
	if c.Text != nil && got != *c.Text {
		t.Errorf("render\n got %q\nwant %q", got, *c.Text)
	}
	if c.IDs != nil {
		// apply_chat_template tokenizes without adding special tokens.
		enc, err := tok.Encode(got, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(enc.IDs, *c.IDs) {
			t.Errorf("ids of rendering\n got %v\nwant %v", enc.IDs, *c.IDs)
		}
	}
}
