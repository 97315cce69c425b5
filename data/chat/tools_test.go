package chat

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolCase is one case of a testdata/tools golden: a tool-calling
// conversation and what Python's Jinja2, configured as transformers'
// apply_chat_template, rendered of it (or the error it raised).
type toolCase struct {
	Name                string          `json:"name"`
	Messages            []Message       `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	AddGenerationPrompt bool            `json:"add_generation_prompt"`
	Kwargs              map[string]any  `json:"kwargs"`
	Text                *string         `json:"text"`
	Error               string          `json:"error"`
}

// goldenDay is the day the goldens' strftime_now renders
// (make_chat_goldens.py pins it, as conversations.json's date_string
// does for Llama's templates): Granite's system prompt writes today's
// date, and a golden of the day it was made failed the day after.
var goldenDay = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// TestToolTemplatesMatchTransformers renders the tool-calling
// conversations of testdata/tools/conversations.json with the real
// templates of Qwen2.5, Qwen3, Llama 3.1 and 3.2, Mistral Nemo and Granite
// 3.3 and compares byte for byte with transformers' renderings: the tool
// schemas and arguments printed by tojson (indented by Llama, one line by
// Qwen, piecewise by Mistral), tool results, parallel calls, calls
// without ids, and the templates' own refusals. SmolLM3's (str.split()
// and rstrip() without arguments), ByteDance Seed-OSS's (a dict indexed by
// an integer), Nemotron Nano v2's ((x|trim).replace(...)) and Qwen3
// Coder's (arguments printed as Python prints them: None, dicts) failed or
// differed before pystr.go and pyprint.go.
func TestToolTemplatesMatchTransformers(t *testing.T) {
	goldens, err := filepath.Glob("testdata/tools/golden-*.json")
	if err != nil || len(goldens) < 10 {
		t.Fatalf("want the ten goldens of testdata/tools, found %v (%v)", goldens, err)
	}
	for _, g := range goldens {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(g), "golden-"), ".json")
		t.Run(name, func(t *testing.T) {
			var golden struct {
				BOS   string     `json:"bos_token"`
				EOS   string     `json:"eos_token"`
				Cases []toolCase `json:"cases"`
			}
			b, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &golden); err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(filepath.Join("testdata/tools", name+".jinja"))
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := New(name, string(src), golden.BOS, golden.EOS)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range golden.Cases {
				t.Run(c.Name, func(t *testing.T) {
					opts := RenderOptions{AddGenerationPrompt: c.AddGenerationPrompt, Vars: c.Kwargs, Now: goldenDay}
					if len(c.Tools) > 0 {
						opts.Tools = string(c.Tools)
					}
					got, err := tpl.RenderWith(context.Background(), c.Messages, opts)
					if c.Error != "" {
						if err == nil || !strings.Contains(err.Error(), c.Error) {
							t.Fatalf("want the template's error %q, got %v", c.Error, err)
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
				})
			}
		})
	}
}
