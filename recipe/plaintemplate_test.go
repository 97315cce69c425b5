package recipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// TestPlainTemplateTokens: under data.template none a text pair's tokens
// are tiny-base's tokenizer's of prompt + completion as one plain text,
// with its special tokens and EOS, as TRL's SFTTrainer tokenizes a
// standard prompt-completion record; the prompt's tokens are masked and
// the completion's and EOS learnt (train_on_inputs: all of them). Where
// the prompt ends in a space that merges with the completion's first word
// the prompt is cut back to the tokens it shares with the whole, so the
// completion's first token is learnt, and DPO and KTO's text pairs (the
// same rule, prep.PromptTokens) split the same record at the same token.
func TestPlainTemplateTokens(t *testing.T) {
	tp, err := LoadTextFor(tinyBase, PlainTemplate, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prompt, completion string
		merges                   bool
	}{
		{"a pair", "The capital of Peru is", " Lima.", false},
		{"a prompt ending in a space", "The capital of Peru is ", "Lima.", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, err := tp.encode(tc.prompt+tc.completion, true)
			if err != nil {
				t.Fatal(err)
			}
			whole = append(whole, tp.eos)
			prompt, err := tp.encode(tc.prompt, true)
			if err != nil {
				t.Fatal(err)
			}
			k := len(prompt)
			if isPrefix := slices.Equal(whole[:min(len(prompt), len(whole))], prompt); isPrefix == tc.merges {
				t.Fatalf("the prompt's tokens %v are a prefix of the whole's %v: %v; the case wants %v", prompt, whole, isPrefix, !tc.merges)
			}
			if tc.merges {
				k-- // the trailing space's token is the one that merges
				if !slices.Equal(whole[:k], prompt[:k]) {
					t.Fatalf("more than the prompt's last token merges: %v, %v", prompt, whole)
				}
			}
			ex := format.Example{Messages: []format.Message{{Role: "user", Content: tc.prompt}, {Role: "assistant", Content: tc.completion}}, TextPair: true, Source: "p.jsonl:1"}
			for _, onInputs := range []bool{false, true} {
				pre := tp.Preprocessor(0)
				pre.Opts.TrainOnInputs = onInputs
				got, _, err := pre.Tokenize(ex)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.IDs, int32s(whole)) {
					t.Fatalf("ids %v, want the plain text's %v", got.IDs, whole)
				}
				for j, l := range got.Labels {
					if want := got.IDs[j]; (j < k && !onInputs && l != prep.IgnoreIndex) || ((j >= k || onInputs) && l != want) {
						t.Fatalf("train_on_inputs %v: labels %v, want the first %d masked", onInputs, got.Labels, k)
					}
				}
			}
			learnt, _ := tp.tok.Decode(whole[k:len(whole)-1], false)
			if !strings.HasSuffix(tc.prompt+tc.completion, learnt) || !strings.Contains(learnt, "Lima.") {
				t.Errorf("learnt %q: the completion is not learnt whole", learnt)
			}
			pair, _, err := tp.recordIDs(context.Background(), format.Example{Text: tc.prompt, Chosen: &format.Reply{Text: tc.completion}, Source: "p.jsonl:1"})
			if err != nil || !slices.Equal(pair.Prompt, int32s(whole[:k])) || !slices.Equal(pair.Chosen, int32s(whole[k:])) {
				t.Errorf("KTO's split of the pair: %v | %v, %v; want %v | %v", pair.Prompt, pair.Chosen, err, whole[:k], whole[k:])
			}
		})
	}
}

// TestPlainTemplateKeysTheCache: the token cache's template key of
// data.template none is neither the model's template's nor that of a
// template file holding the stand-in's source (which renders chats).
func TestPlainTemplateKeysTheCache(t *testing.T) {
	plain, err := LoadTextFor(tinyBase, PlainTemplate, 0)
	if err != nil {
		t.Fatal(err)
	}
	auto, err := LoadTextFor(tinyBase, "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "concat.jinja")
	if err := os.WriteFile(file, []byte(plainSource), 0o644); err != nil {
		t.Fatal(err)
	}
	same, err := LoadTextFor(tinyBase, file, 0)
	if err != nil {
		t.Fatal(err)
	}
	if plain.TemplateHash == auto.TemplateHash || plain.TemplateHash == same.TemplateHash || same.Preprocessor(0).Plain || !plain.Preprocessor(0).Plain {
		t.Errorf("template keys: none %x, auto %x, the same source from a file %x", plain.TemplateHash, auto.TemplateHash, same.TemplateHash)
	}
}

// TestPlainTemplateRefusesChats: a conversation has no plain text, for
// supervised training and preference records alike.
func TestPlainTemplateRefusesChats(t *testing.T) {
	tp, err := LoadTextFor(tinyBase, PlainTemplate, 0)
	if err != nil {
		t.Fatal(err)
	}
	chat := format.Example{Messages: []format.Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "A"}}, Source: "c.jsonl:1"}
	if _, _, err := tp.Preprocessor(0).Tokenize(chat); !errors.Is(err, prep.ErrNeedsTemplate) || !strings.Contains(err.Error(), "data.template") {
		t.Errorf("supervised chat: %v", err)
	}
	pref := format.Example{Messages: chat.Messages[:1], Chosen: &format.Reply{Messages: chat.Messages[1:]}, Source: "c.jsonl:1"}
	if _, _, err := tp.recordIDs(context.Background(), pref); !errors.Is(err, prep.ErrNeedsTemplate) {
		t.Errorf("preference record of messages: %v", err)
	}
}

// TestPlainTemplateRun: a run file with data.template none trains on text
// prompt/completion pairs (packed), records the setting in the run's
// config.yaml, and refuses a chat file naming the setting.
func TestPlainTemplateRun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 48 {
		fmt.Fprintf(&b, `{"prompt": "%d plus %d is", "completion": " %d."}`+"\n", i, i+1, 2*i+1)
	}
	pairs := filepath.Join(dir, "sums.jsonl")
	if err := os.WriteFile(pairs, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run := func(file string) (*Result, string, error) {
		return ktoRun(t, "model: {path: tiny-base}\n"+
			"data: {files: ["+file+"], template: none, packing: true, max_length: 64, val_split: 0.1}\n"+
			"training:\n  batch_size: 2\n  max_steps: 3\n  optimizer: {lr: 1e-3}\n"+
			"  eval: {every: 0, max_batches: 1, generation: {questions: 0}}\n"+
			"  checkpointing: {every: 0}\n"+
			"  tracking: {output_dir: "+out+", tensorboard: false}\n")
	}
	res, log, err := run(pairs)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Steps != 3 || len(res.Losses) == 0 {
		t.Fatalf("%d steps, losses %v\n%s", res.Steps, res.Losses, log)
	}
	cfg, err := os.ReadFile(filepath.Join(res.RunDir, "config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "template: none") {
		t.Errorf("the run's config.yaml does not record data.template none: %v\n%s", err, cfg)
	}
	// Its adapter carries the stand-in template; training on from it (or
	// evaluating it) reads text pairs plainly again, as the run did.
	tp, err := TextFor(Options{ModelDir: tinyBase, InitAdapter: filepath.Join(res.RunDir, "adapter")}, 0)
	if err != nil || !tp.Preprocessor(0).Plain || !strings.Contains(tp.Fallback, "data.template none, as training.lora.init_from's adapter was trained") {
		t.Errorf("training on from the run's adapter: plain %v, %q, %v", err == nil && tp.Preprocessor(0).Plain, tp.Fallback, err)
	}
	chats := filepath.Join(dir, "chat.jsonl")
	if err := os.WriteFile(chats, []byte(strings.Repeat(`{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}`+"\n", 8)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, log, err := run(chats); err == nil || !strings.Contains(err.Error(), "data.template none") {
		t.Errorf("a chat file under data.template none: %v\n%s", err, log)
	}
}

// TestPlainTemplateReachesTheRun: data.template none is the run's Template
// (TestEveryConfigLeafReachesTheRun sets the key to chatml).
func TestPlainTemplateReachesTheRun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	if o := options(t, []string{"data.template=none"}); o.Template != PlainTemplate {
		t.Errorf("Options.Template %q", o.Template)
	}
}
