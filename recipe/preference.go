package recipe

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// This file is training.objective dpo and kto in a run: the preference
// records' data, the settings that do not apply to them, and the
// trainer's objective (package train/dpo).

// Objectives.
const (
	ObjectiveSFT = "sft"
	ObjectiveDPO = "dpo"
	ObjectiveKTO = "kto"
)

// defaultDPOBeta is TRL's DPOConfig.beta, defaultKTOBeta its
// KTOConfig.beta.
const (
	defaultDPOBeta = 0.1
	defaultKTOBeta = 0.1
)

func (o Options) dpo() bool { return o.Objective == ObjectiveDPO }
func (o Options) kto() bool { return o.Objective == ObjectiveKTO }

// preference reports whether the run trains on preference records (dpo
// or kto): loadPreferences reads them, train/dpo's Objective learns them.
func (o Options) preference() bool { return o.dpo() || o.kto() }

// batchRows is the rows of a micro-batch the tape holds:
// training.batch_size, or under DPO twice that (a pair is its chosen and
// its rejected row). The reference's forward, and KTO's forwards of its
// mismatched rows, run without a tape and keep nothing but their
// log-likelihoods, so the memory plan counts the rows once.
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

// lossName names the preference objective's loss in the log: "DPO loss"
// and "KTO loss" for their default losses, else the loss types ("DPO
// (ipo) loss", "DPO (sigmoid + 0.5×sft) loss", "apo_zero_unpaired loss",
// KTO's loss without a KL estimate); "" under sft.
func (o Options) lossName() string {
	switch {
	case o.dpo():
		if name := o.dpoSpec().Name(); name != dpo.LossSigmoid {
			return "DPO (" + name + ") loss"
		}
		return "DPO loss"
	case o.kto():
		if !o.ktoSpec().NeedsKL() {
			return dpo.KTOLossAPOZeroUnpaired + " loss"
		}
		return "KTO loss"
	}
	return ""
}

// ktoSpec is the KTO loss the options ask for.
func (o Options) ktoSpec() dpo.KTOSpec {
	return dpo.KTOSpec{Beta: cmp.Or(o.KTOBeta, defaultKTOBeta), DesirableWeight: o.KTODesirableWeight, UndesirableWeight: o.KTOUndesirableWeight, LossType: o.KTOLossType}
}

// validateObjective checks the objective and refuses what DPO or KTO
// cannot honour, each with the reason. (config.Validate refuses every
// key of another objective, naming its line; here, the loss settings.)
func (o Options) validateObjective() error {
	objective := cmp.Or(o.Objective, ObjectiveSFT)
	switch objective {
	case ObjectiveSFT, ObjectiveDPO, ObjectiveKTO:
	default:
		return fmt.Errorf("recipe: training.objective %q (sft, dpo or kto)", o.Objective)
	}
	if !o.dpo() && (len(o.DPOLossTypes) > 0 || len(o.DPOLossWeights) > 0 || o.DPOLabelSmoothing != 0 || o.DPOSimPOGamma != 0) {
		return fmt.Errorf("recipe: training.dpo's loss_type, loss_weights, label_smoothing and simpo_gamma are DPO's, and the objective is %s: set training.objective dpo, or leave them out", objective)
	}
	if !o.kto() && o.KTOLossType != "" {
		return fmt.Errorf("recipe: training.kto.loss_type is KTO's, and the objective is %s: set training.objective kto, or leave it out", objective)
	}
	switch {
	case o.dpo() && o.DPOBeta < 0:
		return fmt.Errorf("recipe: training.dpo.beta %g: want > 0 (0: the default %g)", o.DPOBeta, defaultDPOBeta)
	case o.kto() && o.KTOBeta < 0:
		return fmt.Errorf("recipe: training.kto.beta %g: want > 0 (0: the default %g)", o.KTOBeta, defaultKTOBeta)
	}
	if o.dpo() {
		if err := o.dpoSpec().Check(); err != nil {
			return fmt.Errorf("recipe: training.dpo: %w", err)
		}
	}
	if o.kto() {
		if err := o.ktoSpec().Check(); err != nil {
			return fmt.Errorf("recipe: training.kto: %w", err)
		}
		if o.ktoSpec().NeedsKL() && o.BatchSize == 1 {
			return fmt.Errorf("recipe: training.objective kto with training.batch_size 1: KTO's KL estimate pairs each prompt of a batch with another example's completion, and a batch of one has none (TRL refuses it alike); raise batch_size, or set training.kto.loss_type apo_zero_unpaired")
		}
	}
	if o.preference() {
		return o.validatePreference()
	}
	return nil
}

// validatePreference refuses, under dpo or kto, what their preference
// records and their reference model cannot honour.
func (o Options) validatePreference() error {
	obj := "recipe: training.objective " + o.Objective
	switch {
	case o.Mode == PerSubject:
		return fmt.Errorf("%s with per-subject adapters: each record's reference is the base without its adapter, and the rows of one batch would need several; use training.adapters: shared", obj)
	case slices.Contains(o.ModulesToSave, "lm_head"):
		return fmt.Errorf("%s with lm_head in lora.modules_to_save: the completions' per-token log-likelihoods run through the fused LM head, which takes no gradient of its own there; leave lm_head out", obj)
	case o.TrainOnInputs:
		return fmt.Errorf("%s with data.train_on_inputs: the loss reads the completions' log-likelihoods and never learns the prompt; set train_on_inputs false", obj)
	case o.MaskHistory:
		return fmt.Errorf("%s with data.mask_history: the loss reads the completions' log-likelihoods, whatever the prompt's history holds; set mask_history false", obj)
	case o.Dedup > 0 || o.Rephrase > 0 || o.PromptDropout > 0:
		return fmt.Errorf("%s with data.augment (dedup %g, rephrase %g, prompt_dropout %g): the augmentations change supervised examples; set them 0", obj, o.Dedup, o.Rephrase, o.PromptDropout)
	case o.NEFTuneAlpha > 0:
		return fmt.Errorf("%s with training.neftune_alpha: the noise would reach the reference's forward too, which must stay the frozen base; set it 0", obj)
	case o.Mixing != "" && o.Mixing != "proportional":
		return fmt.Errorf("%s with data.mixing %s: preference records are taken as they are (proportional); remove the setting", obj, o.Mixing)
	}
	if size, _ := o.world(); size > 1 && o.GradAccum%size != 0 {
		return fmt.Errorf("%s on %d data-parallel workers with training.grad_accum %d, not a multiple of them: the workers would split each micro-batch's rows, and a DPO pair's two rows (or a KTO batch's examples and their mismatched rows) must stay on one worker; make grad_accum a multiple of %d (each worker then runs whole micro-batches; the batch is global, so the step is the same)", obj, size, o.GradAccum, size)
	}
	return nil
}

// loadPreferences reads the selected subjects' or files' preference
// records: DPO's pairs, or KTO's unpaired examples (dpo.Pairs with one
// completion), for training and for validation (the val file, else
// data.val_split's share held out as for supervised data).
func loadPreferences(ctx context.Context, o Options, tp Text, log io.Writer) (*dataset, error) {
	srcs, inputs, err := readSources(ctx, o, tp, log, false)
	if err != nil {
		return nil, err
	}
	// pairs not nil: a preference dataset, even when none is trained on
	// (Options.EvalAllRows).
	ds := &dataset{pairs: []dpo.Pair{}, stats: map[string]prep.Stats{}, inputs: withTemplateFile(o, inputs), templates: templatesOf(srcs)}
	if o.TokenCache != "" {
		fmt.Fprintln(log, "data.token_cache: not used for preference records (they are tokenised each run)")
	}
	tokenize, kind := tokenizePairs, pairKind
	if o.kto() {
		tokenize, kind = tokenizeUnpaired, feedbackKind
	}
	for _, s := range srcs {
		ds.subjects = append(ds.subjects, s.name)
		ds.reads = append(ds.reads, s.reads...)
		// The records' kinds in the files' order, before the hold-out
		// shuffles them: the first of the wrong kind is the one named.
		for _, split := range []struct {
			exs  []format.Example
			name string
		}{{s.train, s.name}, {s.val, s.name + " (validation)"}} {
			for _, ex := range split.exs {
				if err := kind(ex); err != nil {
					return nil, fmt.Errorf("subject %s: %w", split.name, err)
				}
			}
		}
		exs, _, err := trainExamples(o, s, true, log)
		if err != nil {
			return nil, err
		}
		pairs, st, err := tokenize(ctx, s.text, exs, o.SeqLen, o.SkipBad, log)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.name, err)
		}
		saySkippedTokenizing(log, s.name, st)
		if len(pairs) == 0 && !o.EvalAllRows {
			return nil, fmt.Errorf("subject %s: no preference record fits data.max_length %d (%d dropped: the prompt alone fills it; %d skipped)", s.name, o.SeqLen, st.Dropped, st.Skipped)
		}
		ds.stats[s.name] = st
		ds.pairs = append(ds.pairs, pairs...)
		if len(s.val) > 0 {
			vp, vst, err := tokenize(ctx, s.text, s.val, o.SeqLen, o.SkipBad, log)
			if err != nil {
				return nil, fmt.Errorf("subject %s (validation): %w", s.name, err)
			}
			saySkippedTokenizing(log, s.name+" (validation)", vst)
			ds.valPairs = append(ds.valPairs, vp...)
		}
		if len(s.test) > 0 && o.EvalQuestions > 0 {
			fmt.Fprintf(log, "subject %s: the test split's questions are not asked under training.objective %s (its evaluation is the %s and rewards on the validation records)\n", s.name, o.Objective, o.lossName())
		}
	}
	return ds, nil
}

// checkPreferenceTraining says, before a preference run trains, what of
// its settings and training data the objective does not take as a
// supervised run would (packing) and refuses or warns about KTO's
// training examples (checkFeedbackBalance). An evaluation, which reads
// the same data, says none of it: it trains nothing. With several
// workers, each of which checks the same data, rank 0 alone says it; a
// refusal stops every rank.
func (s *session) checkPreferenceTraining() error {
	o := s.o
	if !o.preference() {
		return nil
	}
	log := s.log
	if _, rank := o.world(); rank != 0 {
		log = io.Discard
	}
	if o.Pack {
		fmt.Fprintf(log, "data.packing: does not apply to preference records (each %s, as TRL's trainer batches them)\n", map[bool]string{true: "example is a padded row", false: "pair is two padded rows"}[o.kto()])
	}
	if o.kto() {
		return checkFeedbackBalance(o.ktoSpec(), s.data.pairs, log)
	}
	return nil
}

// tokenizePairs tokenises preference records as TRL's DPOTrainer does
// (tokenizeRecords), then dpo.MakePairs fits them to maxLen. With skip
// (data.skip_bad), a record whose rendering or tokenizing goes over the
// template's or the tokenizer's budget is skipped and counted, as
// supervised records are (BadRecord).
func tokenizePairs(ctx context.Context, tp Text, exs []format.Example, maxLen int, skip bool, log io.Writer) ([]dpo.Pair, prep.Stats, error) {
	pairs, st, err := tokenizeRecords(ctx, tp, exs, skip, log, pairKind)
	if err != nil {
		return nil, st, err
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

// tokenizeUnpaired tokenises KTO's records as TRL's KTOTrainer does
// (tokenizeRecords: the same as its DPOTrainer), unpaired records and
// preference pairs alike, then dpo.MakeUnpaired makes each pair two
// examples (as TRL unpairs paired data) and fits them to maxLen. skip is
// data.skip_bad, as for tokenizePairs.
func tokenizeUnpaired(ctx context.Context, tp Text, exs []format.Example, maxLen int, skip bool, log io.Writer) ([]dpo.Pair, prep.Stats, error) {
	paired := 0
	pairs, st, err := tokenizeRecords(ctx, tp, exs, skip, log, func(ex format.Example) error {
		if err := feedbackKind(ex); err != nil {
			return err
		}
		if !ex.IsUnpaired() {
			paired++
		}
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	if paired > 0 {
		fmt.Fprintf(log, "training.objective kto: %s unpaired into a desirable example (the chosen completion) and an undesirable one (the rejected), as TRL's KTOTrainer unpairs paired data\n", recordsOf(paired))
	}
	kept, ts, err := dpo.MakeUnpaired(pairs, maxLen)
	if err != nil {
		return nil, st, err
	}
	st.Kept, st.Truncated, st.Dropped = ts.Kept, ts.Truncated, ts.Dropped
	for _, p := range kept {
		st.Tokens += len(p.Prompt) + len(p.Chosen) + len(p.Rejected)
	}
	return kept, st, nil
}

// checkFeedbackBalance says how many of KTO's training examples are
// desirable and how many not, and warns, as TRL's KTOTrainer does, when
// their numbers differ and neither weight is in the range the KTO paper
// recommends (its eq. 8: desirable_weight·n_desirable over
// undesirable_weight·n_undesirable in [1, 4/3]), giving the ranges. A run
// whose loss would be 0 whatever the model does (every example of a kind
// whose weight is 0) is refused.
func checkFeedbackBalance(spec dpo.KTOSpec, examples []dpo.Pair, log io.Writer) error {
	nd := 0
	for _, e := range examples {
		if e.Chosen != nil {
			nd++
		}
	}
	nu := len(examples) - nd
	if (nd == 0 || spec.DesirableWeight == 0) && (nu == 0 || spec.UndesirableWeight == 0) {
		return fmt.Errorf("recipe: training.objective kto: %d desirable examples (desirable_weight %g) and %d undesirable ones (undesirable_weight %g): the loss would be 0 whatever the model does", nd, spec.DesirableWeight, nu, spec.UndesirableWeight)
	}
	if spec.NeedsKL() && len(examples) < 2 {
		return fmt.Errorf("recipe: training.objective kto: %d training example: KTO's KL estimate pairs each prompt with another example's completion, and there is none (add examples, or set training.kto.loss_type apo_zero_unpaired)", len(examples))
	}
	fmt.Fprintf(log, "training examples: %d desirable, %d undesirable\n", nd, nu)
	if nd == 0 || nu == 0 {
		fmt.Fprintf(log, "warning: training.objective kto: every training example is %s: the loss still moves the policy against the KL estimate, but the rewards' margin is not measured and the data teaches no contrast (TRL trains on such data)\n", map[bool]string{true: "desirable", false: "undesirable"}[nu == 0])
		return nil // no weight balances one kind against none
	}
	if spec.DesirableWeight == 0 || spec.UndesirableWeight == 0 {
		return nil // one kind is left out on purpose: nothing to balance
	}
	// TRL's counts (each at least 1; the undesirable ones those left by
	// the desirable ones so counted) and its bounds, rounded to 2 decimals.
	d := float64(max(nd, 1))
	u := math.Max(float64(len(examples))-d, 1)
	if d == u {
		return nil
	}
	round := func(x float64) float64 { return math.Round(x*100) / 100 }
	dLo, dHi := round(u*spec.UndesirableWeight/d), round(u*spec.UndesirableWeight/d*1.33)
	uLo, uHi := round(d*spec.DesirableWeight/u/1.33), round(d*spec.DesirableWeight/u)
	if dLo <= spec.DesirableWeight && spec.DesirableWeight <= dHi || uLo <= spec.UndesirableWeight && spec.UndesirableWeight <= uHi {
		return nil
	}
	fmt.Fprintf(log, "warning: training.objective kto: %d desirable and %d undesirable examples, and the weights (desirable %g, undesirable %g) do not balance them as the KTO paper recommends (eq. 8): set training.kto.desirable_weight in [%g, %g] or undesirable_weight in [%g, %g] (not both)\n",
		nd, nu, spec.DesirableWeight, spec.UndesirableWeight, dLo, dHi, uLo, uHi)
	return nil
}

// kindOf names a supervised example's kind for errors: chat or text.
func kindOf(ex format.Example) string {
	if ex.IsChat() {
		return "supervised chat" // prompt/completion pairs included
	}
	return "supervised text"
}

// pairKind refuses a record DPO cannot learn from: any but a preference
// pair.
func pairKind(ex format.Example) error {
	switch {
	case !ex.IsPreference():
		return fmt.Errorf("%s: not a preference record (training.objective dpo reads records with chosen and rejected completions of a prompt; this one is a %s example)", ex.Source, kindOf(ex))
	case ex.IsUnpaired():
		return fmt.Errorf("%s: an unpaired preference record (one completion labelled desirable or not): DPO compares a chosen and a rejected completion of one prompt; training.objective kto learns from unpaired feedback", ex.Source)
	}
	return nil
}

// feedbackKind refuses a record KTO cannot learn from: a supervised one.
func feedbackKind(ex format.Example) error {
	if !ex.IsPreference() {
		return fmt.Errorf("%s: not a preference record (training.objective kto reads records of a prompt with a completion labelled desirable or not, or pairs of a chosen and a rejected completion; this one is a %s example: a record of \"prompt\" and \"completion\" is feedback only with its \"label\", true or false, and without one a supervised pair)", ex.Source, kindOf(ex))
	}
	return nil
}

// tokenizeRecords tokenises preference records, each checked by check
// first, as TRL's trainers do: a conversation's prompt is its rendering
// with the generation prompt and a completion the rest of the rendering
// of the prompt followed by it (its end-of-turn tokens included); a text
// prompt is tokenised with the tokenizer's special tokens and a
// completion is the rest of prompt + text, ending with EOS (added when
// missing). Where the tokens of the prompt are not the start of the whole
// (a tokenizer that merges across the seam: a prompt ending in a space,
// whose space joins the completion's first word), TRL starts the
// completion after as many tokens as the prompt has, which cuts off the
// completion's first token; ftune instead cuts the prompt back to the
// tokens it shares with every whole sequence, so each completion keeps
// all its text (with the prompt's last characters before it, the same in
// each) and the sequences are the whole ones' tokens as TRL's are, and
// says how many records it did that to. A record skip skips (see
// skipRecord) counts in the Stats' Skipped.
func tokenizeRecords(ctx context.Context, tp Text, exs []format.Example, skip bool, log io.Writer, check func(format.Example) error) ([]dpo.Pair, prep.Stats, error) {
	var st prep.Stats
	pairs := make([]dpo.Pair, 0, len(exs))
	seams := 0
	for _, ex := range exs {
		if err := ctx.Err(); err != nil {
			return nil, st, fmt.Errorf("tokenising interrupted: %w", err)
		}
		if err := check(ex); err != nil {
			return nil, st, err
		}
		st.Examples++
		p, seam, err := tp.recordIDs(ctx, ex)
		if err != nil {
			err = fmt.Errorf("%s: %w", ex.Source, err)
			if skip && skipRecord(ctx, &st, err) {
				continue
			}
			return nil, st, err
		}
		if seam {
			seams++
		}
		pairs = append(pairs, p)
	}
	if seams > 0 {
		fmt.Fprintf(log, "warning: %s: the prompt's last tokens merge with the completions' first (e.g. a prompt that ends in a space); their prompt is cut back to the tokens it shares with the prompt followed by each completion, so that the completions keep all their text (TRL would cut off their first token)\n", recordsOf(seams))
	}
	return pairs, st, nil
}

// recordIDs is a preference record's prompt and its completions (those
// it has) as tokens (see tokenizeRecords), and whether the prompt was cut
// back at the seam.
func (p Text) recordIDs(ctx context.Context, ex format.Example) (dpo.Pair, bool, error) {
	if p.plain && ex.IsChat() {
		return dpo.Pair{}, false, fmt.Errorf("%w: data.template none reads text prompts and completions as plain text (as TRL does), and this record's prompt is a list of messages, whose roles only a chat template writes: set data.template to the model's (auto) or a built-in, or give the records as text", prep.ErrNeedsTemplate)
	}
	if err := p.preprocessor(0).WithContext(ctx).CheckTools(ex); err != nil {
		return dpo.Pair{}, false, err
	}
	prompt, err := p.promptIDs(ctx, ex)
	if err != nil {
		return dpo.Pair{}, false, err
	}
	var whole [2][]int // prompt + chosen, prompt + rejected
	var wholes [][]int
	for i, r := range []*format.Reply{ex.Chosen, ex.Rejected} {
		if r == nil {
			continue
		}
		if whole[i], err = p.completedIDs(ctx, ex, r); err != nil {
			return dpo.Pair{}, false, err
		}
		wholes = append(wholes, whole[i])
	}
	// The prompt's tokens that every whole sequence starts with: the
	// rule a supervised text pair's labels follow too.
	k, cut, err := prep.PromptTokens(prompt, wholes...)
	if err != nil {
		return dpo.Pair{}, false, err
	}
	out := dpo.Pair{Prompt: int32s(prompt[:k]), Source: ex.Source}
	if ex.Chosen != nil {
		out.Chosen = int32s(whole[0][k:])
	}
	if ex.Rejected != nil {
		out.Rejected = int32s(whole[1][k:])
	}
	return out, cut, nil
}

// skipRecord counts a preference record whose rendering or tokenizing
// failed with err as skipped (data.skip_bad) and reports true when err is
// the record's own (BadRecord: over the template's or the tokenizer's
// budget), as prep.Preprocessor.SkipBad skips a supervised record;
// cancellation is never skipped. Stats keeps the first reasons, as many
// as prep's own skipping keeps (20), for saySkippedTokenizing.
func skipRecord(ctx context.Context, st *prep.Stats, err error) bool {
	if ctx.Err() != nil || !BadRecord(err) {
		return false
	}
	st.Skipped++
	if len(st.SkipErrors) < 20 {
		st.SkipErrors = append(st.SkipErrors, err.Error())
	}
	return true
}

// promptIDs is a preference record's prompt as tokens.
func (p Text) promptIDs(ctx context.Context, ex format.Example) ([]int, error) {
	if !ex.IsChat() {
		return p.encode(ex.Text, true)
	}
	s, err := p.renderContext(ctx, ex.Messages, ex.Tools, true)
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
	s, err := p.renderContext(ctx, full.Messages, full.Tools, false)
	if err != nil {
		return nil, err
	}
	return p.encode(s, false)
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// preferenceObjective is the trainer's DPO or KTO objective; the
// reference is the base with the shared adapter detached
// (dpo.AdapterOff), or the adapter the run continues, as it was loaded
// (dpo.AdapterAs: TRL's "ref" copy).
func (s *session) preferenceObjective() (*dpo.Objective, error) {
	a := s.adapters["default"]
	if s.routed != nil {
		return nil, fmt.Errorf("recipe: training.objective %s needs one shared adapter (these are per subject)", s.o.Objective)
	}
	m := s.model
	obj := &dpo.Objective{Model: m, Spec: s.o.dpoSpec()}
	if s.o.kto() {
		spec := s.o.ktoSpec()
		obj.KTO = &spec
	}
	switch {
	case a == nil: // ftune eval of the base alone: it is its own reference
		obj.Reference = func(f func() error) error { return f() }
	case s.o.InitAdapter != "":
		ref, err := s.initAdapter("ref")
		if err != nil {
			return nil, err
		}
		obj.Reference = dpo.AdapterAs(m, a, ref)
	default:
		obj.Reference = dpo.AdapterOff(m, a)
	}
	return obj, nil
}

// preferenceLoaders are the training and validation loaders of DPO's
// pairs or KTO's examples, and what a batch's loss is the mean of
// (train.Trainer's LossItems).
func (s *session) preferenceLoaders(batch int) (tl, vl train.Loader, items func(train.Batch) int, err error) {
	be := s.model.Backend
	load := func(pairs []dpo.Pair, shuffle bool, seed uint64) (train.Loader, error) {
		if s.o.kto() {
			l, err := dpo.NewUnpairedLoader(pairs, batch, shuffle, seed, s.o.ktoSpec().NeedsKL(), s.o.SeqLen, s.tp.pad, be)
			if err != nil {
				return nil, err
			}
			return l, nil
		}
		l, err := dpo.NewLoader(pairs, batch, shuffle, seed, s.tp.pad, be)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	items = dpo.Pairs
	if s.o.kto() {
		items = dpo.Examples
	}
	if len(s.data.pairs) > 0 {
		if tl, err = load(s.data.pairs, true, s.o.DataSeed); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(s.data.valPairs) > 0 {
		if vl, err = load(s.data.valPairs, false, 0); err != nil {
			return nil, nil, nil, err
		}
	}
	return tl, vl, items, nil
}

// trainingItems names what the training data's items are: DPO's pairs,
// KTO's examples, or rows.
func (o Options) trainingItems() string {
	switch {
	case o.dpo():
		return "pairs"
	case o.kto():
		return "examples"
	}
	return "rows"
}

// sayPreferenceTraining is the training line of a DPO or KTO run: the
// steps and what a step holds, the loss, and the reference model.
func (s *session) sayPreferenceTraining(t *train.Trainer) {
	o := s.o
	ref := "the base model (the adapter turned off)"
	if o.InitAdapter != "" {
		ref = fmt.Sprintf("the adapter the run continues, as loaded from %s (frozen)", o.InitAdapter)
	}
	if o.kto() {
		spec := o.ktoSpec()
		rows, forwards := "one row each", "forwards without gradients of the examples"
		if spec.NeedsKL() {
			rows, forwards = "one row each, and as many mismatched rows for the KL estimate", "forwards without gradients of the examples and the mismatched rows (and the policy's of the mismatched rows)"
		}
		fmt.Fprintf(s.log, "\n== training: %d steps of %d unpaired examples (%s) × up to %d tokens, %s r=%d on %d modules\n",
			t.TotalSteps(), o.BatchSize*o.GradAccum, rows, o.SeqLen, o.loraKind(), o.R, len(s.anyAdapter().Layers))
		fmt.Fprintf(s.log, "   objective: KTO (%s); reference: %s, %s every micro-batch\n", spec, ref, forwards)
		return
	}
	fmt.Fprintf(s.log, "\n== training: %d steps of %d preference pairs (2 rows each) × up to %d tokens, %s r=%d on %d modules\n",
		t.TotalSteps(), o.BatchSize*o.GradAccum, o.SeqLen, o.loraKind(), o.R, len(s.anyAdapter().Layers))
	spec := o.dpoSpec()
	if spec.NeedsReference() {
		fmt.Fprintf(s.log, "   objective: DPO (%s loss, beta %g); reference: %s, a forward without gradients every micro-batch\n", spec, spec.Beta, ref)
	} else {
		fmt.Fprintf(s.log, "   objective: DPO (%s loss, beta %g); no reference model: the loss reads the policy alone\n", spec, spec.Beta)
	}
}

// recordsOf is "1 preference record" or "n preference records".
func recordsOf(n int) string {
	if n == 1 {
		return "1 preference record"
	}
	return fmt.Sprintf("%d preference records", n)
}
