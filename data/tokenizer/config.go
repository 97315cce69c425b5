package tokenizer

import (
	"encoding/json"
	"fmt"

	"github.com/ftune/ftune/internal/fsutil"
)

// Config holds the tokenizer_config.json settings this package and data/chat
// use, from both transformers v4 and v5 layouts.
type Config struct {
	TokenizerClass string
	// Special token strings; "" when absent or null. Each may be written
	// as a string or as an AddedToken object ({"content": ...}).
	BOSToken, EOSToken, PADToken, UNKToken string
	// AddBOSToken/AddEOSToken are nil when the file does not say.
	AddBOSToken, AddEOSToken *bool
	// CleanUpTokenizationSpaces is clean_up_tokenization_spaces: when true,
	// Decode removes the space before punctuation and contractions as
	// transformers' decode does (" ." -> "."). nil when the file does not say.
	CleanUpTokenizationSpaces *bool
	// ChatTemplates maps a template name to its Jinja source. A single
	// string chat_template is stored as "default"; the list form
	// [{"name": ..., "template": ...}] keeps its names.
	ChatTemplates map[string]string
}

// ReadConfig reads a tokenizer_config.json.
func ReadConfig(path string) (*Config, error) {
	data, err := fsutil.ReadFileLimit(path, MaxConfigFileBytes)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses the contents of a tokenizer_config.json.
func ParseConfig(data []byte) (*Config, error) {
	if err := checkValues("tokenizer_config.json", data, MaxConfigFileValues); err != nil {
		return nil, err
	}
	o, err := parseObj("", data)
	if err != nil {
		return nil, err
	}
	c := &Config{ChatTemplates: map[string]string{}}
	if c.TokenizerClass, err = o.str("tokenizer_class", ""); err != nil {
		return nil, err
	}
	for key, dst := range map[string]*string{
		"bos_token": &c.BOSToken, "eos_token": &c.EOSToken,
		"pad_token": &c.PADToken, "unk_token": &c.UNKToken,
	} {
		if *dst, err = tokenString(o, key); err != nil {
			return nil, err
		}
	}
	for key, dst := range map[string]**bool{"add_bos_token": &c.AddBOSToken, "add_eos_token": &c.AddEOSToken,
		"clean_up_tokenization_spaces": &c.CleanUpTokenizationSpaces} {
		if o.has(key) {
			b, err := o.boolean(key, false)
			if err != nil {
				return nil, err
			}
			*dst = &b
		}
	}
	if o.has("chat_template") {
		raw := o.m["chat_template"]
		var s string
		var named []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		switch {
		case json.Unmarshal(raw, &s) == nil:
			c.ChatTemplates["default"] = s
		case json.Unmarshal(raw, &named) == nil:
			for i, n := range named {
				if n.Name == "" || n.Template == "" {
					return nil, fmt.Errorf("chat_template[%d]: expected name and template", i)
				}
				c.ChatTemplates[n.Name] = n.Template
			}
		default:
			return nil, fmt.Errorf("chat_template: expected a string or a list of {name, template}")
		}
	}
	return c, nil
}

// tokenString reads a special token written as "<s>" or as an AddedToken
// object {"__type": "AddedToken", "content": "<s>", ...}.
func tokenString(o jobj, key string) (string, error) {
	raw := o.m[key]
	if isNull(raw) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var t struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &t); err != nil || t.Content == nil {
		return "", fmt.Errorf("%s: expected a string or an object with \"content\"", o.field(key))
	}
	return *t.Content, nil
}

// applyAddSpecial makes add_bos_token/add_eos_token govern the special
// tokens Encode adds, as transformers' Llama-family fast tokenizers do when
// they rebuild their TemplateProcessing from the config. Only a plain
// template (or none) is rebuilt; byte-level post-processors (Qwen) and
// Sequences keep the file's behaviour, as their transformers classes do.
func (t *Tokenizer) applyAddSpecial(cfg *Config) error {
	if cfg.AddBOSToken == nil && cfg.AddEOSToken == nil {
		return nil
	}
	tp, isTemplate := t.post.(*templatePost)
	if t.post != nil && !isTemplate {
		return nil
	}
	hasBOS, hasEOS := false, false
	if tp != nil && len(tp.single) > 0 {
		first, last := tp.single[0].special, tp.single[len(tp.single)-1].special
		hasBOS = first != nil && len(first.ids) == 1 && first.ids[0] == t.bos
		hasEOS = last != nil && len(last.ids) == 1 && last.ids[0] == t.eos
	}
	if cfg.AddBOSToken != nil {
		hasBOS = *cfg.AddBOSToken
	}
	if cfg.AddEOSToken != nil {
		hasEOS = *cfg.AddEOSToken
	}
	nt := &templatePost{}
	if hasBOS {
		if t.bos < 0 {
			return fmt.Errorf("tokenizer_config.json: add_bos_token is true but bos_token %q is not a token", cfg.BOSToken)
		}
		nt.single = append(nt.single, templateItem{special: &specialPiece{ids: []int{t.bos}, tokens: []string{cfg.BOSToken}}})
	}
	nt.single = append(nt.single, templateItem{})
	if hasEOS {
		if t.eos < 0 {
			return fmt.Errorf("tokenizer_config.json: add_eos_token is true but eos_token %q is not a token", cfg.EOSToken)
		}
		nt.single = append(nt.single, templateItem{special: &specialPiece{ids: []int{t.eos}, tokens: []string{cfg.EOSToken}}})
	}
	t.post = nt
	return nil
}
