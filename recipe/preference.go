package recipe

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// This file is training.objective dpo in a run: the preference pairs'
// data, the settings that do not apply to them, and the trainer's DPO
// objective.

// Objectives.
const (
	ObjectiveSFT = "sft"
	ObjectiveDPO = "dpo"
)

// defaultDPOBeta is TRL's DPOConfig.beta.
const defaultDPOBeta = 0.1

func (o Options) dpo() bool { return o.Objective == ObjectiveDPO }

// batchRows is the rows of a micro-batch: training.batch_size, or under
// DPO twice that (a pair is its chosen and its rejected row). The
// reference's forward, without a tape, runs before the policy's and keeps
// nothing but its log-likelihoods, so the memory plan counts the rows once.
func (o Options) batchRows() int {
	if o.dpo() {
		return 2 * o.BatchSize
	}
	return o.BatchSize
}

// dpoSpec is the DPO loss the options ask for.
func (o Options) dpoSpec() dpo.Spec {
	beta := o.DPOBeta
	if beta == 0 {
		beta = defaultDPOBeta
	}
	return dpo.Spec{Beta: beta, Types: o.DPOLossTypes, Weights: o.DPOLossWeights, LabelSmoothing: o.DPOLabelSmoothing, SimPOGamma: o.DPOSimPOGamma}
}

// validateObjective checks the objective and refuses what DPO cannot
// honour, each with the reason.
func (o Options) validateObjective() error {
	switch o.Objective {
	case "", ObjectiveSFT:
		if len(o.DPOLossTypes) > 0 || len(o.DPOLossWeights) > 0 || o.DPOLabelSmoothing != 0 || o.DPOSimPOGamma != 0 {
			return fmt.Errorf("recipe: training.dpo's loss_type, loss_weights, label_smoothing and simpo_gamma are DPO's, and the objective is %s: set training.objective dpo, or leave them out", cmp.Or(o.Objective, ObjectiveSFT))
		}
		return nil
	case ObjectiveDPO:
	default:
		return fmt.Errorf("recipe: training.objective %q (sft or dpo)", o.Objective)
	}
	if o.DPOBeta < 0 {
		return fmt.Errorf("recipe: training.dpo.beta %g: want > 0 (0: the default %g)", o.DPOBeta, defaultDPOBeta)
	}
	if err := o.dpoSpec().Check(); err != nil {
		return fmt.Errorf("recipe: training.dpo: %w", err)
	}
	switch {
	case o.Mode == PerSubject:
		return fmt.Errorf("recipe: training.objective dpo with per-subject adapters: each pair's reference is the base without its adapter, and the rows of one batch would need several; use training.adapters: shared")
	case slices.Contains(o.ModulesToSave, "lm_head"):
		return fmt.Errorf("recipe: training.objective dpo with lm_head in lora.modules_to_save: DPO's per-token log-likelihoods run through the fused LM head, which takes no gradient of its own there; leave lm_head out")
	case o.TrainOnInputs:
		return fmt.Errorf("recipe: training.objective dpo with data.train_on_inputs: DPO compares the two completions' log-likelihoods and never learns the prompt; set train_on_inputs false")
	case o.MaskHistory:
		return fmt.Errorf("recipe: training.objective dpo with data.mask_history: DPO compares the two completions, whatever the prompt's history holds; set mask_history false")
	case o.Dedup > 0 || o.Rephrase > 0 || o.PromptDropout > 0:
		return fmt.Errorf("recipe: training.objective dpo with data.augment (dedup %g, rephrase %g, prompt_dropout %g): the augmentations change supervised examples; set them 0", o.Dedup, o.Rephrase, o.PromptDropout)
	case o.NEFTuneAlpha > 0:
		return fmt.Errorf("recipe: training.objective dpo with training.neftune_alpha: the noise would reach the reference's forward too, which must stay the frozen base; set it 0")
	case o.Mixing != "" && o.Mixing != "proportional":
		return fmt.Errorf("recipe: training.objective dpo with data.mixing %s: preference pairs are taken as they are (proportional); remove the setting", o.Mixing)
	}
	if size, _ := o.world(); size > 1 {
		return fmt.Errorf("recipe: training.objective dpo on %d data-parallel workers: not offered yet (a pair's two rows must stay on one worker); run one worker", size)
	}
	return nil
}

// loadPreferences reads the selected subjects' or files' preference
// records into pairs: the training pairs, and the validation pairs (the
// val file, else data.val_split's share held out as for supervised data).
func loadPreferences(ctx context.Context, o Options, tp Text, log io.Writer) (*dataset, error) {
	srcs, inputs, err := sources(o, tp, log)
	if err != nil {
		return nil, err
	}
	ds := &dataset{stats: map[string]prep.Stats{}, inputs: inputs}
	if o.Pack {
		fmt.Fprintln(log, "data.packing: does not apply to preference pairs (each pair is two padded rows, as TRL's DPOTrainer batches them)")
	}
	if o.TokenCache != "" {
		fmt.Fprintln(log, "--token-cache: not used for preference pairs (they are tokenised each run)")
	}
	for _, s := range srcs {
		ds.subjects = append(ds.subjects, s.name)
		exs, _, err := trainExamples(o, s, log)
		if err != nil {
			return nil, err
		}
		pairs, st, err := tokenizePairs(ctx, s.text, exs, o.SeqLen, log)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.name, err)
		}
		if len(pairs) == 0 {
			return nil, fmt.Errorf("subject %s: no preference pair fits data.max_length %d (%d dropped: the prompt alone fills it)", s.name, o.SeqLen, st.Dropped)
		}
		ds.stats[s.name] = st
		ds.pairs = append(ds.pairs, pairs...)
		if len(s.val) > 0 {
			vp, _, err := tokenizePairs(ctx, s.text, s.val, o.SeqLen, log)
			if err != nil {
				return nil, fmt.Errorf("subject %s (validation): %w", s.name, err)
			}
			ds.valPairs = append(ds.valPairs, vp...)
		}
		if len(s.test) > 0 && o.EvalQuestions > 0 {
			fmt.Fprintf(log, "subject %s: the test split's questions are not asked under training.objective dpo (its evaluation is the DPO loss and rewards on the validation pairs)\n", s.name)
		}
	}
	return ds, nil
}

// tokenizePairs tokenises preference records as TRL's DPOTrainer does: a
// conversation's prompt is its rendering with the generation prompt and a
// completion the rest of the rendering of the prompt followed by it (its
// end-of-turn tokens included); a text prompt is tokenised with the
// tokenizer's special tokens and a completion is the rest of prompt + text,
// ending with EOS (added when missing). Where the tokens of the prompt are
// not the start of the whole (a tokenizer that merges across the seam: a
// prompt ending in a space, whose space joins the completion's first
// word), TRL starts the completion after as many tokens as the prompt has,
// which cuts off the completion's first token; ftune instead cuts the
// prompt back to the tokens it shares with both whole sequences, so each
// completion keeps all its text (with the prompt's last characters before
// it, the same in both) and the pair is the whole sequences' tokens as
// TRL's is, and says how many pairs it did that to. Then dpo.MakePairs
// fits them to maxLen.
func tokenizePairs(ctx context.Context, tp Text, exs []format.Example, maxLen int, log io.Writer) ([]dpo.Pair, prep.Stats, error) {
	var st prep.Stats
	pairs := make([]dpo.Pair, 0, len(exs))
	seams := 0
	for _, ex := range exs {
		if err := ctx.Err(); err != nil {
			return nil, st, fmt.Errorf("tokenising interrupted: %w", err)
		}
		if !ex.IsPreference() {
			return nil, st, fmt.Errorf("%s: not a preference record (training.objective dpo reads records with chosen and rejected completions of a prompt; this one is a %s example)", ex.Source, map[bool]string{true: "chat", false: "text"}[ex.IsChat()])
		}
		st.Examples++
		prompt, err := tp.promptIDs(ctx, ex)
		if err != nil {
			return nil, st, fmt.Errorf("%s: %w", ex.Source, err)
		}
		chosen, err := tp.completedIDs(ctx, ex, ex.Chosen)
		if err != nil {
			return nil, st, fmt.Errorf("%s: %w", ex.Source, err)
		}
		rejected, err := tp.completedIDs(ctx, ex, ex.Rejected)
		if err != nil {
			return nil, st, fmt.Errorf("%s: %w", ex.Source, err)
		}
		// The prompt's tokens that both whole sequences start with.
		k := min(sharedPrefix(prompt, chosen), sharedPrefix(prompt, rejected))
		if k < len(prompt) {
			seams++
		}
		if k == 0 {
			return nil, st, fmt.Errorf("%s: the prompt's first token is not the first of the prompt followed by a completion, so the completions cannot be told from it (a tokenizer or template that rewrites the start of the text)", ex.Source)
		}
		pairs = append(pairs, dpo.Pair{Prompt: int32s(prompt[:k]), Chosen: int32s(chosen[k:]), Rejected: int32s(rejected[k:]), Source: ex.Source})
	}
	if seams > 0 {
		fmt.Fprintf(log, "warning: %s: the prompt's last tokens merge with the completions' first (e.g. a prompt that ends in a space); their prompt is cut back to the tokens it shares with the prompt followed by each completion, so that the completions keep all their text (TRL would cut off their first token)\n", pairsOf(seams))
	}
	kept, ts, err := dpo.MakePairs(pairs, maxLen)
	if err != nil {
		return nil, st, err
	}
	st.Kept, st.Truncated, st.Dropped = ts.Kept, ts.Truncated, ts.Dropped
	for _, p := range kept {
		st.Tokens += 2*len(p.Prompt) + len(p.Chosen) + len(p.Rejected)
	}
	return kept, st, nil
}

// promptIDs is a preference record's prompt as tokens.
func (p Text) promptIDs(ctx context.Context, ex format.Example) ([]int, error) {
	if !ex.IsChat() {
		return p.encode(ex.Text, true)
	}
	s, err := p.renderContext(ctx, ex.Messages, true)
	if err != nil {
		return nil, err
	}
	return p.encode(s, false)
}

// completedIDs is the prompt followed by completion r, as tokens.
func (p Text) completedIDs(ctx context.Context, ex format.Example, r *format.Reply) ([]int, error) {
	full := ex.Completed(r)
	if !full.IsChat() {
		ids, err := p.encode(full.Text, true)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 || ids[len(ids)-1] != p.eos {
			ids = append(ids, p.eos)
		}
		return ids, nil
	}
	s, err := p.renderContext(ctx, full.Messages, false)
	if err != nil {
		return nil, err
	}
	return p.encode(s, false)
}

// sharedPrefix is the length of the longest shared beginning of a and b.
func sharedPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// dpoObjective is the trainer's DPO loss; the reference is the base with
// the shared adapter detached (dpo.AdapterOff).
func (s *session) dpoObjective() (*dpo.Objective, error) {
	a := s.adapters["default"]
	if s.routed != nil {
		return nil, fmt.Errorf("recipe: training.objective dpo needs one shared adapter (these are per subject)")
	}
	m := s.model
	if a == nil { // ftune eval of the base alone: it is its own reference
		return &dpo.Objective{Model: m, Spec: s.o.dpoSpec(), Reference: func(f func() error) error { return f() }}, nil
	}
	if s.o.InitAdapter != "" {
		// The adapter the run continued, as it was: TRL's "ref" copy.
		ref, err := s.initAdapter("ref")
		if err != nil {
			return nil, err
		}
		return &dpo.Objective{Model: m, Spec: s.o.dpoSpec(), Reference: dpo.AdapterAs(m, a, ref)}, nil
	}
	return &dpo.Objective{Model: m, Spec: s.o.dpoSpec(), Reference: dpo.AdapterOff(m, a)}, nil
}

// dpoLoaders are the training and validation loaders of the pairs.
func (s *session) dpoLoaders(batch int) (tl, vl train.Loader, err error) {
	be := s.model.Backend
	if tl, err = dpo.NewLoader(s.data.pairs, batch, true, s.o.DataSeed, s.tp.pad, be); err != nil {
		return nil, nil, err
	}
	if len(s.data.valPairs) > 0 {
		if vl, err = dpo.NewLoader(s.data.valPairs, batch, false, 0, s.tp.pad, be); err != nil {
			return nil, nil, err
		}
	}
	return tl, vl, nil
}

// pairsOf is "1 preference pair" or "n preference pairs".
func pairsOf(n int) string {
	if n == 1 {
		return "1 preference pair"
	}
	return fmt.Sprintf("%d preference pairs", n)
}
