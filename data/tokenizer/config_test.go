package tokenizer

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigLayouts(t *testing.T) {
	// transformers v4: AddedToken objects, chat_template inside.
	v4 := `{"add_bos_token": true, "add_eos_token": false,
		"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
		"eos_token": {"content": "</s>"}, "unk_token": "<unk>", "pad_token": null,
		"chat_template": "{{ bos_token }}", "tokenizer_class": "LlamaTokenizer"}`
	c, err := ParseConfig([]byte(v4))
	if err != nil {
		t.Fatal(err)
	}
	if c.BOSToken != "<s>" || c.EOSToken != "</s>" || c.UNKToken != "<unk>" || c.PADToken != "" {
		t.Errorf("v4 tokens: %+v", c)
	}
	if c.AddBOSToken == nil || !*c.AddBOSToken || c.AddEOSToken == nil || *c.AddEOSToken {
		t.Errorf("v4 add_*_token: %v %v", c.AddBOSToken, c.AddEOSToken)
	}
	if c.ChatTemplates["default"] != "{{ bos_token }}" || c.TokenizerClass != "LlamaTokenizer" {
		t.Errorf("v4 template/class: %+v", c)
	}
	// transformers v5: plain strings, no add_* keys, template in its own file.
	c, err = ParseConfig([]byte(`{"backend": "tokenizers", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>", "model_max_length": 1e30}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.EOSToken != "<|endoftext|>" || c.PADToken != "<|pad|>" || c.AddBOSToken != nil || len(c.ChatTemplates) != 0 {
		t.Errorf("v5: %+v", c)
	}
	// Named templates.
	c, err = ParseConfig([]byte(`{"chat_template": [{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.ChatTemplates, map[string]string{"default": "A", "tool_use": "B"}) {
		t.Errorf("named templates: %v", c.ChatTemplates)
	}
	for _, bad := range []struct{ json, field string }{
		{`{"eos_token": 5}`, "eos_token"},
		{`{"eos_token": {"lstrip": true}}`, "eos_token"},
		{`{"add_bos_token": "yes"}`, "add_bos_token"},
		{`{"chat_template": 7}`, "chat_template"},
		{`{"chat_template": [{"name": "x"}]}`, "chat_template[0]"},
		{`[1]`, ""},
	} {
		_, err := ParseConfig([]byte(bad.json))
		if err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("ParseConfig(%s): %v, want an error naming %q", bad.json, err, bad.field)
		}
	}
}

// TestAddSpecialFromConfig: add_bos_token/add_eos_token rebuild a plain
// template, as transformers' Llama fast tokenizer does.
func TestAddSpecialFromConfig(t *testing.T) {
	m := spJSON(t)
	yes, no := true, false
	cases := []struct {
		addBOS, addEOS *bool
		want           []int // ids of "hi" with special tokens, around the text's own ids
	}{
		{nil, nil, []int{1}},      // the file's template: <s> $A
		{&yes, &no, []int{1}},     // Llama-2's config
		{&no, nil, nil},           // BOS off
		{&yes, &yes, []int{1, 2}}, // EOS on (common for fine-tuning)
		{nil, &yes, []int{1, 2}},  // keeps the file's BOS
	}
	for _, c := range cases {
		cfg := &Config{BOSToken: "<s>", EOSToken: "</s>", AddBOSToken: c.addBOS, AddEOSToken: c.addEOS}
		tk, err := fromMap(t, m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := tk.Encode("hi", false)
		sp, _ := tk.Encode("hi", true)
		var got []int
		if len(sp.IDs) > len(plain.IDs) && sp.IDs[0] == 1 {
			got = append(got, 1)
		}
		if n := len(sp.IDs); n > 0 && sp.IDs[n-1] == 2 {
			got = append(got, 2)
		}
		if !reflect.DeepEqual(got, c.want) || len(sp.IDs) != len(plain.IDs)+len(c.want) {
			t.Errorf("add_bos=%v add_eos=%v: %v (plain %v), want specials %v", ptr(c.addBOS), ptr(c.addEOS), sp.IDs, plain.IDs, c.want)
		}
		if len(sp.Offsets) > 0 && sp.IDs[0] == 1 && sp.Offsets[0] != [2]int{0, 0} {
			t.Errorf("BOS offsets %v, want [0 0]", sp.Offsets[0])
		}
	}
	cfg := &Config{EOSToken: "<nope>", AddEOSToken: &yes}
	if _, err := fromMap(t, m, cfg); err == nil || !strings.Contains(err.Error(), "add_eos_token") {
		t.Errorf("add_eos_token with an unknown eos_token: %v", err)
	}
}

func ptr(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}

// TestCleanUpTokenizationSpaces: only an explicit true in the config turns
// on transformers' clean-up in Decode (tokenizers' own decode never does).
func TestCleanUpTokenizationSpaces(t *testing.T) {
	m := spJSON(t)
	yes, no := true, false
	for _, c := range []struct {
		clean *bool
		want  string
	}{
		{nil, "Hi , it 's ok ."}, {&no, "Hi , it 's ok ."}, {&yes, "Hi, it's ok."},
	} {
		tk, err := fromMap(t, m, &Config{CleanUpTokenizationSpaces: c.clean})
		if err != nil {
			t.Fatal(err)
		}
		enc, err := tk.Encode("Hi , it 's ok .", false)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := tk.Decode(enc.IDs, false); got != c.want {
			t.Errorf("clean_up=%s: got %q want %q", ptr(c.clean), got, c.want)
		}
	}
	c, err := ParseConfig([]byte(`{"clean_up_tokenization_spaces": false}`))
	if err != nil || c.CleanUpTokenizationSpaces == nil || *c.CleanUpTokenizationSpaces {
		t.Errorf("parse clean_up_tokenization_spaces: %+v %v", c, err)
	}
}
