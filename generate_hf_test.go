package ftune

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// tinyBaseVariant writes a model folder with tiny-base's files, except
// that each of files replaces (or, nil, removes) the file of that name.
func tinyBaseVariant(t *testing.T, files map[string][]byte) string {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	src, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"} {
		b, replaced := files[f]
		if !replaced {
			if b, err = os.ReadFile(filepath.Join(src, f)); err != nil {
				t.Fatal(err)
			}
		}
		if b == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGenerateRawPromptGetsBOS: Generate encoded a raw prompt without the
// tokenizer's special tokens, while transformers' tokenizer(prompt) (and
// ftune's training on plain text) puts the BOS first, so the model
// continued another sequence. The folder is tiny-base with the
// llama3-style tokenizer of data/tokenizer's tests (tiny-base's vocabulary,
// a TemplateProcessing that puts <|endoftext|>, id 0, first). The want
// comes from transformers 5.12.1 on that folder: tok(prompt)["input_ids"]
// and model.generate(ids, do_sample=False, max_new_tokens=16), decoded
// with skip_special_tokens=True (float32 weights; ftune's bf16 weights are
// the same values, and the greedy path has no near tie here). Without the
// BOS, transformers continues "The capital of France is" with ids
// [602 286 1309 17 ...] instead.
func TestGenerateRawPromptGetsBOS(t *testing.T) {
	tok, err := os.ReadFile("data/tokenizer/testdata/llama3-style/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	tokCfg, err := os.ReadFile("data/tokenizer/testdata/llama3-style/tokenizer_config.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(tinyBaseVariant(t, map[string][]byte{"tokenizer.json": tok, "tokenizer_config.json": tokCfg}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prompt, text string
		ids, chat    []int
	}{
		{"The capital of France is", " a subject of national prosperity, and that the people of the United States have no",
			[]int{0, 878, 1893, 273, 2540, 336}, []int{1, 427, 268, 202, 878, 1893, 273, 2540, 336, 2, 202, 1, 587, 428, 416, 202}},
		{"Once upon a time", " from the Patenth, you will have to be seen by the\n",
			[]int{0, 3433, 314, 592, 262, 644}, []int{1, 427, 268, 202, 3433, 314, 592, 262, 644, 2, 202, 1, 587, 428, 416, 202}},
	} {
		r, err := m.Generate(context.Background(), c.prompt, GenerateOptions{MaxNewTokens: 16})
		if err != nil {
			t.Fatal(err)
		}
		if r.PromptTokens != len(c.ids) || r.Text != c.text {
			t.Errorf("Generate(%q): %d prompt tokens, %q; transformers: %d (%v), %q", c.prompt, r.PromptTokens, r.Text, len(c.ids), c.ids, c.text)
		}
		// A chat prompt gets no BOS on top of what the template writes
		// (transformers' apply_chat_template: add_special_tokens=False).
		ids, err := m.chatPrompt(context.Background(), []Message{{Role: "user", Content: c.prompt}}, GenerateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, c.chat) {
			t.Errorf("chat prompt of %q: %v; transformers' apply_chat_template: %v", c.prompt, ids, c.chat)
		}
	}
}

// TestChatStopsOnGenerationConfigEOS: generation_config.json's eos ids
// were never read; transformers' generate() stops on them (instruct models
// list their end-of-turn ids there). tiny-base with eos_token_id [0, 273]
// (273 is " of", a token its replies reach soon) against transformers
// 5.12.1: apply_chat_template, then model.generate(ids, do_sample=False,
// max_new_tokens=40), which stopped after these tokens. The reply's text
// leaves the stop token out, as it does for any stop.
func TestChatStopsOnGenerationConfigEOS(t *testing.T) {
	dir := tinyBaseVariant(t, map[string][]byte{"generation_config.json": []byte(`{"bos_token_id": 0, "eos_token_id": [0, 273], "pad_token_id": 3}`)})
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for q, hf := range map[string][]int{
		"Symbol of iron?":  {408, 292, 572, 273},
		"Capital of Peru?": {408, 292, 282, 302, 1151, 286, 263, 1022, 273},
	} {
		r, err := m.Chat(context.Background(), []Message{{Role: "user", Content: q}}, GenerateOptions{MaxNewTokens: 40})
		if err != nil {
			t.Fatal(err)
		}
		text, err := m.Tokenizer.Decode(hf[:len(hf)-1], true)
		if err != nil {
			t.Fatal(err)
		}
		if r.Stopped != StopToken || r.Tokens != len(hf) || r.Text != text {
			t.Errorf("%q: %d tokens, %q, stopped %q; transformers stopped on 273 after %d: %v (%q before it)", q, r.Tokens, r.Text, r.Stopped, len(hf), hf, text)
		}
	}
}

// TestChatStopsAtTemplateEndOfTurn: only ChatML's <|im_end|> stopped a
// reply, so a chat rendered with the built-in gemma template ran past
// <end_of_turn>. The folder is tiny-base with its ChatML tokens renamed to
// Gemma's and no template, so the built-in gemma one renders its chats.
// tiny-base, a base model, seldom ends a turn, so its <end_of_turn> (id 2)
// is given the embedding of "," (id 15; embeddings are tied, so the logits
// of the two tie and greedy decoding picks the lower id, 2): the reply
// meets <end_of_turn> where it would write its first comma.
func TestChatStopsAtTemplateEndOfTurn(t *testing.T) {
	src, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok = []byte(strings.NewReplacer("<|im_start|>", "<start_of_turn>", "<|im_end|>", "<end_of_turn>").Replace(string(tok)))
	m, err := Load(tinyBaseVariant(t, map[string][]byte{"tokenizer.json": tok, "chat_template.jinja": nil}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Template.Name() != "builtin:gemma" {
		t.Fatalf("template %s, want the built-in gemma", m.Template.Name())
	}
	eot, ok := m.Tokenizer.TokenToID("<end_of_turn>")
	if !ok || eot != 2 {
		t.Fatalf("<end_of_turn> is %d, %v; want id 2", eot, ok)
	}
	giveEmbedding(m, eot, 15)

	msgs := []Message{{Role: "user", Content: "Symbol of iron?"}}
	prompt, err := m.chatPrompt(context.Background(), msgs, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := m.Net.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	at := slices.Index(all, eot)
	if at < 0 {
		t.Fatalf("the test's premise: the greedy reply %v never reaches <end_of_turn>", all)
	}
	r, err := m.Chat(context.Background(), msgs, GenerateOptions{MaxNewTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stopped != StopToken || r.Tokens != at+1 {
		t.Errorf("Chat: %d tokens, stopped %q (%q); want a stop on <end_of_turn>, token %d of %v", r.Tokens, r.Stopped, r.Text, at+1, all)
	}
	r, err = m.NewConversation("").Send(context.Background(), "Symbol of iron?", GenerateOptions{MaxNewTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stopped != StopToken || r.Tokens != at+1 {
		t.Errorf("Conversation.Send: %d tokens, stopped %q (%q); want a stop on <end_of_turn>, token %d", r.Tokens, r.Stopped, r.Text, at+1)
	}
}

// TestConversationHugeMaxNewTokens: Send kept the history while
// len(prompt)+MaxNewTokens <= the context, which wrapped around for a
// MaxNewTokens near math.MaxInt: every turn stayed, the first reply
// filled the context, and the second message was refused with "this
// message takes N tokens", a message of a few tokens. As documented, a
// MaxNewTokens past the context leaves no room for history: each turn
// drops all the earlier ones. The model is tiny-base with a context of
// 256 positions instead of 1024: each reply fills the context, so a
// shorter one is a quarter of the generation.
func TestConversationHugeMaxNewTokens(t *testing.T) {
	src, err := assets.Model(TinyBase)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(cfg), `"max_position_embeddings": 1024`, `"max_position_embeddings": 256`, 1)
	if short == string(cfg) {
		t.Fatalf("tiny-base's config.json has no max_position_embeddings 1024:\n%s", cfg)
	}
	m, err := Load(tinyBaseVariant(t, map[string][]byte{"config.json": []byte(short)}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Net.Config.MaxPositions != 256 {
		t.Fatalf("the variant holds %d positions, want 256", m.Net.Config.MaxPositions)
	}
	c := m.NewConversation("")
	for i, want := range []int{0, 2} {
		r, err := c.Send(context.Background(), "Tell me about the history of the army", GenerateOptions{MaxNewTokens: math.MaxInt})
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if r.DroppedTurns != want {
			t.Errorf("message %d: dropped %d messages, want %d", i+1, r.DroppedTurns, want)
		}
	}
}

// giveEmbedding gives token to the (tied) embedding of token from, so that
// greedy decoding, where it would pick from, picks the lower id of the two.
func giveEmbedding(m *Model, to, from int) {
	cfg := m.Net.Config
	emb := m.Net.Embed.Value.F32()
	copy(emb[to*cfg.HiddenSize:(to+1)*cfg.HiddenSize], emb[from*cfg.HiddenSize:(from+1)*cfg.HiddenSize])
	v := autograd.Frozen(tensor.FromHost(m.Net.Backend, tensor.F32, emb, cfg.VocabSize, cfg.HiddenSize), "model.embed_tokens.weight")
	m.Net.Embed, m.Net.LMHead.Weight = v, v
}
