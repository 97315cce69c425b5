package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/assets"
)

// samplingFolder is tiny-base with a generation_config.json that samples
// by default, as Llama-3-Instruct's does (with a higher temperature, so
// that a few sampled tokens surely differ from the greedy ones).
func samplingFolder(t *testing.T) string {
	return folderWith(t, `{"eos_token_id": 0, "do_sample": true, "temperature": 1.3, "top_p": 0.95}`)
}

// folderWith is tiny-base with gc as its generation_config.json.
func folderWith(t *testing.T, gc string) string {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	src, err := assets.Model(ftune.TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(gc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reply is the API's answer to one chat message.
func reply(t *testing.T, model, msg string, opt ftune.GenerateOptions) string {
	t.Helper()
	m, err := ftune.Load(model, ftune.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.NewConversation("").Send(context.Background(), msg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r.Text + "\n"
}

// TestGenerateSamplesAsGenerationConfigSays: ftune generate decoded
// greedily whatever the model folder's generation_config.json said, while
// transformers' generate() samples with its do_sample, temperature, top_k
// and top_p when given no sampling argument (and with top_k 50, its
// default, when the file has none). Now the CLI does the same and says so
// on one line; --temperature 0 is greedy.
func TestGenerateSamplesAsGenerationConfigSays(t *testing.T) {
	dir := samplingFolder(t)
	sampled := reply(t, dir, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 12, Temperature: 1.3, TopP: 0.95, TopK: 50})
	greedy := reply(t, dir, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 12})
	if sampled == greedy {
		t.Fatalf("the test's premise: sampling gave the greedy reply %q", greedy)
	}
	out, log, err := runGenerate(t, context.Background(), "", "--model", dir, "--prompt", "Symbol of iron?", "--max-tokens", "12")
	if err != nil {
		t.Fatal(err)
	}
	note := "note: sampling as " + filepath.Join(dir, "generation_config.json") + " says: temperature 1.3, top_p 0.95; top_k 50 as in transformers"
	if out != sampled || !strings.Contains(log, note) || !strings.Contains(log, "--temperature 0 for greedy") || strings.Count(log, "note: sampling") != 1 {
		t.Errorf("no sampling flag: stdout %q, stderr %q; want the sampled %q and one line saying %q", out, log, sampled, note)
	}
	out, log, err = runGenerate(t, context.Background(), "", "--model", dir, "--prompt", "Symbol of iron?", "--max-tokens", "12", "--temperature", "0")
	if err != nil {
		t.Fatal(err)
	}
	if out != greedy || strings.Contains(log, "sampling") {
		t.Errorf("--temperature 0: stdout %q, stderr %q; want the greedy %q and no note", out, log, greedy)
	}
	// --top-k and --seed mean something for a folder that samples: they
	// shape its sampling (and override the file's and transformers' top_k).
	want := reply(t, dir, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 12, Temperature: 1.3, TopP: 0.95, TopK: 5, Seed: 3})
	out, log, err = runGenerate(t, context.Background(), "", "--model", dir, "--prompt", "Symbol of iron?", "--max-tokens", "12", "--top-k", "5", "--seed", "3")
	if err != nil {
		t.Fatal(err)
	}
	if out != want || strings.Contains(log, "top_k 50") || strings.Contains(log, "seed 0") {
		t.Errorf("--top-k 5 --seed 3 on a sampling folder: stdout %q, stderr %q; want %q", out, log, want)
	}
	// For a folder that does not sample, they are refused as before, with
	// the reason the run is greedy.
	_, _, err = runGenerate(t, context.Background(), "", "--prompt", "x", "--top-k", "5")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--top-k shapes sampling, and --temperature 0 (the default, as ") || !strings.Contains(err.Error(), "generation_config.json sets no do_sample") {
		t.Errorf("--top-k on tiny-base (greedy): got %v, want a usage error saying its generation_config.json sets no do_sample", err)
	}
	_, _, err = runGenerate(t, context.Background(), "", "--model", dir, "--prompt", "x", "--temperature", "0", "--seed", "1")
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--seed shapes sampling, and --temperature 0 is greedy") {
		t.Errorf("--temperature 0 --seed 1: got %v, want a usage error", err)
	}
}

// TestGenerateDefaultTopK: --temperature alone sampled from the whole
// vocabulary; transformers' generate(do_sample=True, temperature=T) keeps
// the 50 most likely tokens (GenerationConfig's top_k). ftune generate
// now does, says so, and --top-k 0 still means the whole vocabulary.
func TestGenerateDefaultTopK(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	if a, b := reply(t, ftune.TinyBase, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 24, Temperature: 2, TopK: 50}),
		reply(t, ftune.TinyBase, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 24, Temperature: 2}); a == b {
		t.Fatalf("the test's premise: top_k 50 and the whole vocabulary gave the same reply %q", a)
	}
	for _, c := range []struct {
		args []string
		topK int
		note bool
	}{
		{[]string{"--temperature", "2"}, 50, true},
		{[]string{"--temperature", "2", "--top-k", "0"}, 0, false},
	} {
		want := reply(t, ftune.TinyBase, "Symbol of iron?", ftune.GenerateOptions{MaxNewTokens: 24, Temperature: 2, TopK: c.topK})
		out, log, err := runGenerate(t, context.Background(), "", append([]string{"--prompt", "Symbol of iron?", "--max-tokens", "24"}, c.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if out != want || strings.Contains(log, "top_k 50 as in transformers") != c.note {
			t.Errorf("%v: stdout %q, stderr %q; want %q (top_k %d)", c.args, out, log, want, c.topK)
		}
	}
}

// TestGenerateDecodesAsGenerationConfigSays: generation_config.json's
// repetition_penalty, min_p and stop_strings were ignored without a word.
// As in transformers' generate(), the penalty and the stop strings apply
// to greedy runs too and min_p when sampling; flags override them, and a
// line says what the file set. The chat (no --prompt) gets them as well.
func TestGenerateDecodesAsGenerationConfigSays(t *testing.T) {
	dir := folderWith(t, `{"eos_token_id": 0, "repetition_penalty": 1.3, "stop_strings": ["world"]}`)
	path := filepath.Join(dir, "generation_config.json")
	const q = "Symbol of iron?"
	asFile := reply(t, dir, q, ftune.GenerateOptions{MaxNewTokens: 24, RepetitionPenalty: 1.3, StopStrings: []string{"world"}})
	if plain := reply(t, dir, q, ftune.GenerateOptions{MaxNewTokens: 24}); asFile == plain || strings.Contains(asFile, "world") {
		t.Fatalf("the test's premise: the file's settings give %q, none %q", asFile, plain)
	}
	for _, c := range []struct {
		args []string
		want ftune.GenerateOptions
		note string // "" none
	}{
		{nil, ftune.GenerateOptions{RepetitionPenalty: 1.3, StopStrings: []string{"world"}},
			`note: greedy, with ` + path + `'s repetition_penalty 1.3, stop_strings ["world"] (--repetition-penalty 1 for none; --stop replaces them)`},
		{[]string{"--repetition-penalty", "1"}, ftune.GenerateOptions{StopStrings: []string{"world"}},
			`note: greedy, with ` + path + `'s stop_strings ["world"] (--stop replaces them)`},
		{[]string{"--repetition-penalty", "1.1", "--stop", " is", "--stop", "."}, ftune.GenerateOptions{RepetitionPenalty: 1.1, StopStrings: []string{" is", "."}}, ""},
	} {
		c.want.MaxNewTokens = 24
		want := reply(t, dir, q, c.want)
		for _, stdin := range []string{"", q + "\n"} {
			args := append([]string{"--model", dir, "--max-tokens", "24"}, c.args...)
			if stdin == "" {
				args = append(args, "--prompt", q)
			}
			out, log, err := runGenerate(t, context.Background(), stdin, args...)
			if err != nil {
				t.Fatal(err)
			}
			if out != want || c.note != "" && !strings.Contains(log, c.note) || c.note == "" && strings.Contains(log, "note: greedy") {
				t.Errorf("%q (stdin %q): stdout %q, stderr %q; want %q and the note %q", c.args, stdin, out, log, want, c.note)
			}
		}
	}

	// min_p when the folder samples, from the file or --min-p.
	dir = folderWith(t, `{"eos_token_id": 0, "do_sample": true, "temperature": 1.5, "min_p": 0.2}`)
	path = filepath.Join(dir, "generation_config.json")
	sampled := ftune.GenerateOptions{MaxNewTokens: 24, Temperature: 1.5, TopK: 50}
	withMinP := sampled
	withMinP.MinP = 0.2
	if a, b := reply(t, dir, q, sampled), reply(t, dir, q, withMinP); a == b {
		t.Fatalf("the test's premise: min_p 0.2 changes nothing (%q)", a)
	}
	for _, c := range []struct {
		args []string
		minP float64
		note string
	}{
		{nil, 0.2, "note: sampling as " + path + " says: temperature 1.5, min_p 0.2; top_k 50"},
		{[]string{"--min-p", "0"}, 0, "note: sampling as " + path + " says: temperature 1.5; top_k 50"},
	} {
		opt := sampled
		opt.MinP = c.minP
		want := reply(t, dir, q, opt)
		out, log, err := runGenerate(t, context.Background(), "", append([]string{"--model", dir, "--max-tokens", "24", "--prompt", q}, c.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if out != want || !strings.Contains(log, c.note) {
			t.Errorf("%q: stdout %q, stderr %q; want %q and the note %q", c.args, out, log, want, c.note)
		}
	}
}
