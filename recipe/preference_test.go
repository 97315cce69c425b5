package recipe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/train/dpo"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/internal/testutil"
)

// writePreferences turns a subject's chat examples into preference
// records: the question as the prompt, its answer chosen, the answer
// spelt backwards rejected (doubled when that is the same: "9" → "99").
// A wrong answer drawn from the other examples would not do: it is some
// other record's chosen answer, so training would raise on its own
// questions what validation counts as rejected. chat false writes the
// text form (prompt, chosen, rejected strings).
func writePreferences(t *testing.T, dir, subject string, n int, chat bool) string {
	t.Helper()
	qs, as, wrong := preferenceQA(t, subject, n)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range n {
		var rec any
		if chat {
			rec = map[string]any{"prompt": turn("user", qs[i]), "chosen": turn("assistant", as[i]), "rejected": turn("assistant", wrong[i])}
		} else {
			rec = map[string]string{"prompt": "Q: " + qs[i] + "\nA:", "chosen": " " + as[i], "rejected": " " + wrong[i]}
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, subject+"-prefs.jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// preferenceQA are the first n questions of a subject's training file,
// their answers, and each answer spelt backwards (doubled when that is
// the same: "9" → "99"), writePreferences' rejected answers.
func preferenceQA(t *testing.T, subject string, n int) (qs, answers, wrong []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(subjects, subject, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type msg struct{ Role, Content string }
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(qs) < n {
		var rec struct{ Messages []msg }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		qs, answers = append(qs, rec.Messages[0].Content), append(answers, rec.Messages[1].Content)
	}
	if len(qs) < n {
		t.Fatalf("%s has %d examples, not %d", subject, len(qs), n)
	}
	for _, a := range answers {
		rs := []rune(a)
		slices.Reverse(rs)
		w := string(rs)
		if w == a {
			w += a
		}
		wrong = append(wrong, w)
	}
	return qs, answers, wrong
}

// turn is a list of one message, as preference records hold them.
func turn(role, content string) []map[string]string {
	return []map[string]string{{"role": role, "content": content}}
}

// TestDPORun trains DPO on chemistry preferences (the right answer over
// another question's) and checks what a user sees: the validation pairs'
// DPO loss starts at log 2 (the adapter starts as the identity, so the
// policy is the reference), reward accuracy rises, the rewards reach the
// step metrics and the adapter is saved.
func TestDPORun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := quickOptions(t, "dpo")
	o.Subjects = nil
	o.DataRoot, o.DataFiles = "", []string{writePreferences(t, t.TempDir(), "chemistry", 120, true)}
	o.Objective, o.DPOBeta = ObjectiveDPO, 0.1
	o.Steps, o.BatchSize, o.LR, o.EvalEvery, o.EvalMaxBatches = 12, 4, 1e-3, 6, 0
	o.ValSplit = 0.2
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := log.String()
	if got := res.Before.Val["val/loss"]; math.Abs(got-math.Ln2) > 1e-6 {
		t.Errorf("DPO loss before training %.8f, want log 2 = %.8f (policy = reference)", got, math.Ln2)
	}
	if res.Before.Val["val/rewards/margins"] != 0 {
		t.Errorf("margin before training %g, want 0", res.Before.Val["val/rewards/margins"])
	}
	after := res.After.Val
	if after["val/loss"] >= res.Before.Val["val/loss"] || after["val/rewards/accuracies"] < 0.7 || after["val/rewards/margins"] <= 0 {
		t.Errorf("after %d steps: loss %.4f, reward accuracy %.3f, margin %.4f: DPO did not learn the preferences\n%s",
			res.Steps, after["val/loss"], after["val/rewards/accuracies"], after["val/rewards/margins"], out)
	}
	for _, want := range []string{"objective: DPO (sigmoid loss, beta 0.1)", "validation pairs: DPO loss", "data.packing: does not apply to preference records"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	metrics, err := os.ReadFile(filepath.Join(res.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"train/rewards/accuracies"`, `"train/rewards/margins"`, `"val/rewards/accuracies"`} {
		if !bytes.Contains(metrics, []byte(key)) {
			t.Errorf("metrics.jsonl has no %s", key)
		}
	}
	if res.Adapters["default"] == "" {
		t.Errorf("no adapter exported: %v", res.Adapters)
	}
	t.Logf("before: %v\nafter: %v", res.Before.Val, after)
}

// TestDPOLossTypeReachesTheRun: training.dpo.loss_type reaches the
// objective (from a config file, through FromConfig): before training the
// policy is the reference, so every log-ratio is 0 and the validation loss
// is the loss type's value there: IPO's (0 − 1/(2β))² = 25 at β 0.1, and
// log 2 + 0.5 × the chosen completions' token loss for [sigmoid, sft]
// with weights [1, 0.5] (that token loss itself is not 0); orpo runs
// without a reference model.
func TestDPOLossTypeReachesTheRun(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, log string
		check           func(loss float64) bool
		want            string
	}{
		{"ipo", "loss_type: ipo", "objective: DPO (ipo loss, beta 0.1)",
			func(l float64) bool { return math.Abs(l-25) < 1e-6 }, "25, IPO's (0 − 1/(2·0.1))²"},
		{"rpo", "loss_type: sigmoid,sft\n    loss_weights: [1, 0.5]", "objective: DPO (sigmoid + 0.5×sft loss, beta 0.1)",
			func(l float64) bool { return l > math.Ln2+1e-3 }, "log 2 plus half the chosen completions' token loss (> 0)"},
		{"orpo", "loss_type: orpo", "objective: DPO (orpo loss, beta 0.1); no reference model",
			func(l float64) bool { return l > 0 && !math.IsInf(l, 0) }, "a finite loss > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := dpoOptions(t, tc.name, true)
			path := filepath.Join(t.TempDir(), "run.yaml")
			yml := "training:\n  objective: dpo\n  dpo:\n    " + tc.yaml + "\n"
			if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			fromCfg, err := FromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			o.DPOLossTypes, o.DPOLossWeights, o.DPOLabelSmoothing = fromCfg.DPOLossTypes, fromCfg.DPOLossWeights, fromCfg.DPOLabelSmoothing
			o.Steps = 1
			var log bytes.Buffer
			o.Log = &log
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			if !strings.Contains(log.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, log.String())
			}
			if got := res.Before.Val["val/loss"]; !tc.check(got) {
				t.Errorf("loss before training %.8f, want %s", got, tc.want)
			}
		})
	}
}

func dpoOptions(t *testing.T, name string, chat bool) Options {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := quickOptions(t, name)
	o.Subjects = nil
	o.DataRoot, o.DataFiles = "", []string{writePreferences(t, t.TempDir(), "chemistry", 40, chat)}
	o.Objective = ObjectiveDPO
	o.Steps, o.BatchSize, o.LR, o.EvalEvery, o.EvalMaxBatches = 6, 2, 1e-3, 0, 1
	return o
}

// TestDPOResumesExactly: a DPO run stopped after 3 steps (its checkpoint)
// and resumed to 6 continues as the uninterrupted run does: the same
// losses, bit for bit (the pair loader's position and the adapters'
// dropout streams are in the checkpoint). Text-form pairs, so the EOS the
// completions get is in the rows too.
func TestDPOResumesExactly(t *testing.T) {
	o := dpoOptions(t, "full", false)
	o.Schedule, o.WarmupSteps, o.CheckpointEvery = "constant", 0, 3
	checkResumesExactly(t, o)
}

// checkResumesExactly runs o for 6 steps, then for 3 (its checkpoint at
// step 3: o.CheckpointEvery) and resumed to 6, and compares the losses,
// which must be the same bit for bit.
func checkResumesExactly(t *testing.T, o Options) {
	t.Helper()
	o.Steps = 6
	full, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.RunName, o.Steps = "part", 3
	part, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.ResumeDir, o.Steps = part.RunDir, 6
	resumed, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Losses) != 6 || resumed.Steps != 6 {
		t.Fatalf("full run %d losses, resumed run %d steps", len(full.Losses), resumed.Steps)
	}
	got := append(append([]float64(nil), part.Losses...), resumed.Losses[len(resumed.Losses)-3:]...)
	if !slices.Equal(got, full.Losses) {
		t.Errorf("losses interrupted and resumed %v, uninterrupted %v", got, full.Losses)
	}
}

// TestDPORefusals: what DPO cannot honour is refused before anything
// loads, naming the setting; the wrong kind of data for the objective is
// refused naming the record.
func TestDPORefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"per-subject adapters", func(o *Options) { o.Mode = PerSubject }, "per-subject adapters"},
		{"a trained lm_head", func(o *Options) { o.ModulesToSave = []string{"lm_head"} }, "lm_head in lora.modules_to_save"},
		{"train_on_inputs", func(o *Options) { o.TrainOnInputs = true }, "data.train_on_inputs"},
		{"mask_history", func(o *Options) { o.MaskHistory = true }, "data.mask_history"},
		{"augmentation", func(o *Options) { o.Rephrase = 0.5 }, "data.augment"},
		{"NEFTune", func(o *Options) { o.NEFTuneAlpha = 5 }, "neftune_alpha"},
		{"uniform mixing", func(o *Options) { o.Mixing = "uniform" }, "data.mixing uniform"},
		{"a negative beta", func(o *Options) { o.DPOBeta = -1 }, "training.dpo.beta"},
		{"an unknown objective", func(o *Options) { o.Objective = "orpo" }, `training.objective "orpo"`},
		{"an unknown loss type", func(o *Options) { o.DPOLossTypes = []string{"kto"} }, `training.dpo: dpo: loss type "kto"`},
		{"label smoothing without robust", func(o *Options) { o.DPOLabelSmoothing = 0.1 }, "label_smoothing 0.1 is used by loss types robust and simpo only"},
		{"simpo_gamma without simpo", func(o *Options) { o.DPOSimPOGamma = 1 }, "simpo_gamma 1 is used by loss type simpo only"},
		{"weights of other types", func(o *Options) { o.DPOLossWeights = []float64{1, 2} }, "2 loss weights for 1 loss types"},
		{"a DPO loss under sft", func(o *Options) { o.Objective, o.DPOLossTypes = ObjectiveSFT, []string{"ipo"} }, "the objective is sft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := dpoOptions(t, "refused", true)
			tc.set(&o)
			_, err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	t.Run("supervised data under dpo", func(t *testing.T) {
		o := dpoOptions(t, "sft-data", true)
		o.DataFiles = []string{writeUserFile(t, t.TempDir(), "chat.jsonl", "chat", 10)}
		_, err := Run(context.Background(), o)
		if err == nil || !regexp.MustCompile(`chat\.jsonl:\d+: not a preference record`).MatchString(err.Error()) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("preference data under sft", func(t *testing.T) {
		o := dpoOptions(t, "pref-data", true)
		o.Objective = ""
		_, err := Run(context.Background(), o)
		if err == nil || !regexp.MustCompile(`chemistry-prefs\.jsonl:\d+: a preference record`).MatchString(err.Error()) || !strings.Contains(err.Error(), "training.objective: dpo") {
			t.Fatalf("err = %v", err)
		}
	})
}

// familyText materialises a tokenizer family folder of
// testdata/tokenizers (inflating .zst files, following tokenizer_from) and
// loads it as a run's Text.
func familyText(t *testing.T, family string) Text {
	t.Helper()
	src := filepath.Join("..", "testdata", "tokenizers", family)
	out := t.TempDir()
	for dir := src; ; {
		for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} {
			if _, err := os.Stat(filepath.Join(out, name)); err == nil {
				continue // the family's own beats tokenizer_from's
			}
			for _, n := range []string{name, name + ".zst"} {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					if err := testutil.InflateFile(filepath.Join(dir, n), out); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		from, err := os.ReadFile(filepath.Join(dir, "tokenizer_from"))
		if err != nil {
			break
		}
		dir = filepath.Join(dir, strings.TrimSpace(string(from)))
	}
	tp, err := LoadText(out, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestDPOTokenizationMatchesTRL: preference records tokenised as TRL's
// DPOTrainer does with Hugging Face's tokenizers and apply_chat_template
// (testdata/tokenizers/<family>/dpo_golden.json, make_dpo_goldens.py):
// conversations through each family's chat template (a system prompt, an
// earlier turn, whitespace and non-ASCII completions), text with the
// tokenizer's special tokens and EOS; every id equal.
func TestDPOTokenizationMatchesTRL(t *testing.T) {
	for _, family := range []string{"qwen3", "gemma3", "phi3", "mistral"} {
		t.Run(family, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizers", family, "dpo_golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var golden struct {
				Cases []struct {
					Prompt, Chosen, Rejected json.RawMessage
					PromptIDs                []int32 `json:"prompt_ids"`
					ChosenIDs                []int32 `json:"chosen_ids"`
					RejectedIDs              []int32 `json:"rejected_ids"`
				}
			}
			if err := json.Unmarshal(raw, &golden); err != nil {
				t.Fatal(err)
			}
			tp := familyText(t, family)
			for i, c := range golden.Cases {
				rec, _ := json.Marshal(map[string]json.RawMessage{"prompt": c.Prompt, "chosen": c.Chosen, "rejected": c.Rejected})
				exs, err := readPreferenceLine(t, rec)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				pairs, _, err := tokenizePairs(context.Background(), tp, exs, 0, false, io.Discard)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				p := pairs[0]
				if !slices.Equal(p.Prompt, c.PromptIDs) || !slices.Equal(p.Chosen, c.ChosenIDs) || !slices.Equal(p.Rejected, c.RejectedIDs) {
					t.Errorf("case %d (%s):\n prompt   %v\n want     %v\n chosen   %v\n want     %v\n rejected %v\n want     %v",
						i, c.Prompt, p.Prompt, c.PromptIDs, p.Chosen, c.ChosenIDs, p.Rejected, c.RejectedIDs)
				}
			}
		})
	}
}

// readPreferenceLine reads one JSONL preference record as the data
// pipeline does.
func readPreferenceLine(t *testing.T, line []byte) ([]format.Example, error) {
	p := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(p, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	exs, _, err := format.ReadAll(p, format.Options{})
	return exs, err
}

// TestDPOLossTypeNames: the config's loss_type names are the objective's.
func TestDPOLossTypeNames(t *testing.T) {
	if !slices.Equal(config.DPOLossTypes, dpo.LossTypes) {
		t.Errorf("config.DPOLossTypes %q, dpo.LossTypes %q", config.DPOLossTypes, dpo.LossTypes)
	}
}
