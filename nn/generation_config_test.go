package nn

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/fsutil"
)

// llamaTinyWith copies llama-tiny's config.json and weights (vocab 320,
// eos 2) into a new folder and writes genConfig as its
// generation_config.json ("" writes none).
func llamaTinyWith(t *testing.T, genConfig string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("../testdata/fixtures/llama-tiny", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if genConfig != "" {
		if err := os.WriteFile(filepath.Join(dir, GenerationConfigFile), []byte(genConfig), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadReadsGenerationConfig: generation_config.json was never read, so
// an instruct model's end-of-turn ids (Gemma-2-it's [1, 107], Llama-3-
// Instruct's [128001, 128008, 128009]), which transformers' generate()
// stops on, did not stop ftune. Its eos ids are now stop tokens, and its
// sampling keys are exposed (Config.Generation).
func TestLoadReadsGenerationConfig(t *testing.T) {
	dir := llamaTinyWith(t, `{"bos_token_id": 1, "eos_token_id": [2, 107, 311], "do_sample": true, "temperature": 0.6, "top_p": 0.9, "max_new_tokens": 12}`)
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := m.Config.Generation
	if g.Path != filepath.Join(dir, GenerationConfigFile) || !slices.Equal(g.EOSTokenIDs, []int{2, 107, 311}) || !g.DoSample ||
		g.Temperature == nil || *g.Temperature != 0.6 || g.TopP == nil || *g.TopP != 0.9 || g.TopK != nil {
		t.Fatalf("Config.Generation = %+v, want the file's eos [2 107 311], do_sample, temperature 0.6, top_p 0.9, no top_k", g)
	}
	// Each id once: config.json's 2, the file's 107 and 311, the
	// tokenizer's 7, <|im_end|> 9.
	if got := m.StopTokens(fakeVocab{"<eos>": 7, "<|im_end|>": 9}); !slices.Equal(got, []int{2, 107, 311, 7, 9}) {
		t.Fatalf("StopTokens = %v, want [2 107 311 7 9]", got)
	}
	// Without the file: config.json's eos alone, greedy.
	m, err = Load(llamaTinyWith(t, ""), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := m.Config.Generation; g.Path != "" || g.EOSTokenIDs != nil || g.DoSample {
		t.Fatalf("no generation_config.json: Config.Generation = %+v, want zero", g)
	}
	if got := m.StopTokens(fakeVocab{}); !slices.Equal(got, []int{2}) {
		t.Fatalf("StopTokens without generation_config.json = %v, want [2]", got)
	}
}

// TestLoadRefusesBadGenerationConfig: a malformed generation_config.json
// is an error naming the file and the key, not a file silently dropped
// (transformers drops it with a log line, and with it the eos ids a reply
// should stop on). What is not a regular file is refused without blocking,
// as config.json is.
func TestLoadRefusesBadGenerationConfig(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{`{"eos_token_id": "</s>"}`, `eos_token_id: want an int or a list of ints, got "</s>"`},
		{`{"eos_token_id": [1, -3]}`, "eos_token_id[1] -3 is not a token of this model (vocab_size 320"},
		{`{"eos_token_id": 320}`, "eos_token_id 320 is not a token of this model (vocab_size 320: ids 0 to 319)"},
		{`{"do_sample": "yes"}`, `do_sample: want true, false or null, got "yes"`},
		{`{"temperature": -1}`, "temperature: want a number ≥ 0 or null, got -1"},
		{`{"do_sample": true, "temperature": 0}`, "temperature 0 with do_sample true"},
		{`{"top_k": 2.5}`, "top_k: want an integer ≥ 0 (0: all tokens) or null, got 2.5"},
		{`{"top_k": -1}`, "top_k: want an integer ≥ 0"},
		{`{"top_p": 0}`, "top_p: want a number in (0, 1] or null, got 0"},
		{`{"top_p": 1.5}`, "top_p: want a number in (0, 1] or null, got 1.5"},
		{`{"min_p": 1.5}`, "min_p: want a number in [0, 1] or null, got 1.5"},
		{`{"min_p": -0.1}`, "min_p: want a number in [0, 1] or null, got -0.1"},
		{`{"repetition_penalty": 0}`, "repetition_penalty: want a number > 0 (1: off) or null, got 0"},
		{`{"repetition_penalty": -1.2}`, "repetition_penalty: want a number > 0 (1: off) or null, got -1.2"},
		{`{"repetition_penalty": "1.1"}`, `repetition_penalty: want a number > 0 (1: off) or null, got "1.1"`},
		{`{"stop_strings": 3}`, "stop_strings: want a string, a list of strings or null, got 3"},
		{`{"stop_strings": ""}`, "stop_strings is empty"},
		{`{"stop_strings": ["Q:", ""]}`, "stop_strings[1] is empty"},
		{`{"stop_strings": ["Q:", null]}`, "stop_strings[1] is empty"},
		{`[1, 2]`, "generation_config.json is not a JSON object"},
		{`{"eos_token_id": 2,`, "generation_config.json is not a JSON object"},
	} {
		dir := llamaTinyWith(t, c.file)
		_, err := Load(dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, GenerationConfigFile)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %s and saying %q", c.file, err, GenerationConfigFile, c.want)
		}
	}
	// A folder where the file should be, a file past the size cap (a named
	// pipe: generation_config_fifo_test.go).
	dir := llamaTinyWith(t, "")
	path := filepath.Join(dir, GenerationConfigFile)
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, LoadOptions{}); !errors.Is(err, fsutil.ErrNotRegular) {
		t.Errorf("a folder named %s: got %v, want ErrNotRegular", GenerationConfigFile, err)
	}
	dir = llamaTinyWith(t, `{"eos_token_id": 2, "pad": "`+strings.Repeat("x", maxGenerationConfigBytes)+`"}`)
	if _, err := Load(dir, LoadOptions{}); !errors.Is(err, fsutil.ErrTooLarge) {
		t.Errorf("a %s over %d bytes: got %v, want ErrTooLarge", GenerationConfigFile, maxGenerationConfigBytes, err)
	}
}

// TestGenerationSampling: the sampling transformers' generate() does when
// its caller passes none. Each case is a generation_config.json given to
// transformers 5.12.1 (AutoModelForCausalLM.from_pretrained on tiny-base
// with that file, then _get_logits_processor on
// _prepare_generation_config(None)); the want is the warpers it built:
//
//	do_sample, temperature 0.6, top_p 0.9 -> Temperature(0.6), TopK(50), TopP(0.9)
//	do_sample, top_k 0                     -> none (temperature 1, every token)
//	temperature 0.7, top_k 20, no do_sample -> greedy (it logs that they are ignored)
//	do_sample, nulls, top_p 1.0            -> TopK(50)
//	do_sample, temperature 0               -> ValueError (refused at load here)
//	repetition_penalty 1.3                 -> RepetitionPenalty(1.3), greedy
//	do_sample, temperature 0.7, top_k 20, top_p 0.8, repetition_penalty 1.05, min_p 0.05
//	                                       -> RepetitionPenalty(1.05), Temperature(0.7), TopK(20), TopP(0.8), MinP(0.05)
//	min_p 0.1, repetition_penalty 1.0      -> none, greedy (min_p "may be ignored", it logs)
func TestGenerationSampling(t *testing.T) {
	for _, c := range []struct {
		file   string
		want   GenerateOptions
		sample bool
	}{
		{`{"do_sample": true, "temperature": 0.6, "top_p": 0.9}`, GenerateOptions{Temperature: 0.6, TopK: 50, TopP: 0.9}, true},
		{`{"do_sample": true, "top_k": 0}`, GenerateOptions{Temperature: 1}, true},
		{`{"temperature": 0.7, "top_k": 20}`, GenerateOptions{}, false},
		{`{"do_sample": true, "temperature": null, "top_k": null, "top_p": 1.0}`, GenerateOptions{Temperature: 1, TopK: 50}, true},
		{`{"do_sample": false, "temperature": 0}`, GenerateOptions{}, false},
		{`{}`, GenerateOptions{}, false},
		{`{"repetition_penalty": 1.3}`, GenerateOptions{RepetitionPenalty: 1.3}, false},
		{`{"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.05, "min_p": 0.05}`,
			GenerateOptions{Temperature: 0.7, TopK: 20, TopP: 0.8, MinP: 0.05, RepetitionPenalty: 1.05}, true},
		{`{"min_p": 0.1, "repetition_penalty": 1.0}`, GenerateOptions{}, false},
	} {
		g, err := ParseGenerationDefaults([]byte(c.file), 320)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		got, sample := g.Sampling()
		if sample != c.sample || got.Temperature != c.want.Temperature || got.TopK != c.want.TopK || got.TopP != c.want.TopP ||
			got.MinP != c.want.MinP || got.RepetitionPenalty != c.want.RepetitionPenalty {
			t.Errorf("%s: Sampling() = %+v, %v; want %+v, %v", c.file, got, sample, c.want, c.sample)
		}
	}
}

// TestLoadReadsDecodingKeys: repetition_penalty, min_p and stop_strings
// were dropped without a word (Qwen2.5-Instruct's generation_config.json
// sets repetition_penalty 1.05); they are read, and transformers' forms
// of stop_strings (one string or a list) both are.
func TestLoadReadsDecodingKeys(t *testing.T) {
	m, err := Load(llamaTinyWith(t, `{"eos_token_id": 2, "do_sample": true, "repetition_penalty": 1.05, "min_p": 0.05, "stop_strings": ["Q:", "\n\n"]}`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := m.Config.Generation
	if g.RepetitionPenalty == nil || *g.RepetitionPenalty != 1.05 || g.MinP == nil || *g.MinP != 0.05 || !slices.Equal(g.StopStrings, []string{"Q:", "\n\n"}) {
		t.Fatalf("Config.Generation = %+v, want repetition_penalty 1.05, min_p 0.05, stop_strings [Q: \\n\\n]", g)
	}
	for file, want := range map[string][]string{
		`{"stop_strings": "</answer>"}`: {"</answer>"},
		`{"stop_strings": null}`:        nil,
		`{"stop_strings": []}`:          {},
	} {
		g, err := ParseGenerationDefaults([]byte(file), 320)
		if err != nil || !slices.Equal(g.StopStrings, want) {
			t.Errorf("%s: stop strings %q, %v; want %q", file, g.StopStrings, err, want)
		}
	}
}

// TestStopTokensTurnEnds: a chat template's end-of-turn token stops
// generation when the vocabulary has it (Gemma's <end_of_turn> is no EOS);
// one it lacks, or "", adds nothing.
func TestStopTokensTurnEnds(t *testing.T) {
	m := &Model{Config: Config{EOSTokenIDs: []int{1}}}
	v := fakeVocab{"<eos>": 1, "<end_of_turn>": 107}
	if got := m.StopTokens(v, "<end_of_turn>"); !slices.Equal(got, []int{1, 107}) {
		t.Fatalf("StopTokens(<end_of_turn>) = %v, want [1 107]", got)
	}
	if got := m.StopTokens(v, "<|eot_id|>", ""); !slices.Equal(got, []int{1}) {
		t.Fatalf("StopTokens with turn ends outside the vocabulary = %v, want [1]", got)
	}
}

// TestTopKKeepsTies: top-k kept exactly k tokens after a stable sort, so
// of tokens tied with the k-th the lower ids stayed and the others could
// never be drawn; transformers' TopKLogitsWarper keeps every logit ≥ the
// k-th largest. The want probabilities come from transformers 5.12.1:
// torch.softmax of the scores after the warpers _get_logits_processor
// builds for GenerationConfig(do_sample=True, temperature=T, top_k=k,
// top_p=1.0), in float32, hence the tolerance of 1e-6.
func TestTopKKeepsTies(t *testing.T) {
	for _, c := range []struct {
		logits []float64
		t      float64
		k      int
		want   []float64 // by token id
	}{
		{[]float64{3, 2, 2, 2, 1, 0}, 1, 2, []float64{0.4753669, 0.1748777, 0.1748777, 0.1748777, 0, 0}},
		{[]float64{2, 1, 3, 2, 0, 2}, 1, 2, []float64{0.1748777, 0, 0.4753669, 0.1748777, 0, 0.1748777}},
		{[]float64{2, 1, 3, 2, 0, 2}, 0.7, 3, []float64{0.1394169, 0, 0.5817494, 0.1394169, 0, 0.1394169}},
		{[]float64{0.5, -1, 2.25, 0.5, 0.5, -3}, 1.3, 1, []float64{0, 0, 1, 0, 0, 0}},
	} {
		ids, p := distribution(c.logits, GenerateOptions{Temperature: c.t, TopK: c.k})
		got := make([]float64, len(c.logits))
		for i, id := range ids {
			got[id] = p[i]
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-6 {
				t.Errorf("logits %v, temperature %g, top-k %d: probabilities %.7f, transformers %v", c.logits, c.t, c.k, got, c.want)
				break
			}
		}
	}
}

// TestProcessorsMatchTransformers: the repetition penalty and min-p were
// missing. The want probabilities come from transformers 5.12.1: the
// processor list GenerationMixin._get_logits_processor builds (on
// tiny-base) for GenerationConfig(do_sample=True, repetition_penalty,
// temperature, top_k, top_p, min_p), applied to these logits given as a
// float64 tensor with these input ids, then torch.softmax. It applied
// RepetitionPenalty, Temperature, TopK, TopP, MinP in that order (each
// when set). In float64 the only differences left are rounding in exp and
// the sums (about 1e-16), hence 1e-12; in float32 (generate()'s dtype) the
// same cases agree within 1e-7 (6.0e-8 the largest difference).
func TestProcessorsMatchTransformers(t *testing.T) {
	l1 := []float64{2.0, -1.5, 0.5, 3.0, -0.25, 1.0, 1.0, -3.0, 0.0, 2.5, 1.75, -0.5}
	ids1 := []int{3, 1, 1, 8, 6, 10} // a negative logit (1, twice), 0 (8), one of two equal logits (6)
	l2 := []float64{0.3, 1.2, -0.7, 2.2, 2.1, -2.5, 0.9, 1.6, -0.1, 1.9, 0.0, 2.4}
	ids2 := []int{4, 9, 2, 4, 11, 5}
	for _, c := range []struct {
		logits []float64
		ids    []int
		opt    GenerateOptions
		want   []float64 // by token id
	}{
		{l1, ids1, GenerateOptions{RepetitionPenalty: 1.3, Temperature: 1}, []float64{0.17358293426878257, 0.0033422876326419993, 0.038731587922427826, 0.2361218062801638, 0.018295506669102752, 0.063857592855698933, 0.050697989841853114, 0.0011695926110487933, 0.023491895574308017, 0.28618987595948403, 0.090270375463902763, 0.014248554920585334}},
		{l1, ids1, GenerateOptions{RepetitionPenalty: 1.3, Temperature: 0.7, MinP: 0.1}, []float64{0.19130131112879087, 0, 0, 0.29690439058876839, 0, 0.045845557484685343, 0, 0, 0, 0.39077636682018674, 0.075172373977568707, 0}},
		{l1, ids1, GenerateOptions{RepetitionPenalty: 0.8, Temperature: 1.5, TopK: 6, TopP: 0.9, MinP: 0.05}, []float64{0.13611809019944748, 0, 0, 0.43711201344780509, 0, 0, 0.082559795047494638, 0, 0, 0.18996809796133798, 0.15424200334391464, 0}},
		{l1, ids1, GenerateOptions{Temperature: 0.5, MinP: 0.3}, []float64{0, 0, 0, 0.7310585786300049, 0, 0, 0, 0, 0, 0.26894142136999516, 0, 0}},
		{l2, ids2, GenerateOptions{RepetitionPenalty: 1.2, Temperature: 1, TopK: 4, MinP: 0.2}, []float64{0, 0, 0, 0.33275981726343606, 0.21217702721568379, 0, 0, 0.18262245973869559, 0, 0, 0, 0.27244069578218461}},
		{l2, ids2, GenerateOptions{RepetitionPenalty: 2, Temperature: 0.9, TopP: 0.8, MinP: 0.5}, []float64{0, 0, 0, 0.66075636876581723, 0, 0, 0, 0.33924363123418283, 0, 0, 0, 0}},
		{l2, ids2, GenerateOptions{RepetitionPenalty: 1.5, Temperature: 1.2, TopP: 0.7, MinP: 0.6}, []float64{0, 0, 0, 0.45186276187760616, 0, 0, 0, 0.27406861906119706, 0, 0, 0, 0.27406861906119701}},
		{l2, ids2, GenerateOptions{RepetitionPenalty: 1.1, Temperature: 0.8, MinP: 1}, []float64{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
		{l2, ids2, GenerateOptions{RepetitionPenalty: 1.1, Temperature: 0.8, TopK: 7}, []float64{0, 0.068504458257418382, 0, 0.23910405343351901, 0.1662117309998718, 0, 0.047082379709707356, 0.11294475746679475, 0, 0.13242146282459646, 0, 0.23373115730809224}},
	} {
		logits := slices.Clone(c.logits)
		seen := make([]bool, len(logits))
		for _, id := range c.ids {
			seen[id] = true
		}
		if penalized(c.opt) {
			penalize(logits, seen, c.opt.RepetitionPenalty)
		}
		idx, p := distribution(logits, c.opt)
		got := make([]float64, len(logits))
		for i, id := range idx {
			got[id] = p[i]
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("ids %v, %+v: probabilities %.17g, transformers %.17g", c.ids, c.opt, got, c.want)
				break
			}
		}
	}
}
