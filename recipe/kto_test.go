package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/commtest"
	"github.com/ftune/ftune/train/dpo"
)

// writeFeedback writes unpaired preference records (KTO's data) to
// dir/name: for each of the chemistry questions from..to-1, its answer
// labelled desirable when desirable(i) and its answer spelt backwards
// labelled undesirable when undesirable(i) (one, both or neither), as
// conversations. It returns the path and the desirable and undesirable
// records written.
func writeFeedback(t *testing.T, dir, name string, from, to int, desirable, undesirable func(i int) bool) (path string, nd, nu int) {
	t.Helper()
	qs, as, wrong := preferenceQA(t, "chemistry", to)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	put := func(q, a string, label bool) {
		if err := enc.Encode(map[string]any{"prompt": turn("user", q), "completion": turn("assistant", a), "label": label}); err != nil {
			t.Fatal(err)
		}
	}
	for i := from; i < to; i++ {
		if desirable(i) {
			put(qs[i], as[i], true)
			nd++
		}
		if undesirable(i) {
			put(qs[i], wrong[i], false)
			nu++
		}
	}
	path = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, nd, nu
}

func always(int) bool { return true }

// ktoRun runs the run file yml (its data and output settings are the
// caller's) through config.Load and FromConfig, as ftune train -c does.
func ktoRun(t *testing.T, yml string) (*Result, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, "", err
	}
	o, err := FromConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	return res, log.String(), err
}

// TestKTORun: training.objective kto from a run file (through
// FromConfig). Before training the adapter is the identity, so the policy
// is the reference: every log-ratio is 0, the KL estimate 0, and each
// example's loss 1 − σ(0) = 0.5 times its weight, so the validation loss
// is 0.5 (1.5 n_desirable + 0.5 n_undesirable) / n with the weights
// 1.5 and 0.5 set. After 12 steps the desirable (right) answers' rewards
// are above the undesirable (reversed) ones', and the rewards and the KL
// estimate reach the metrics.
func TestKTORun(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	root := t.TempDir()
	writeFeedback(t, filepath.Join(root, "chem"), "train.jsonl", 0, 60, always, always)
	// Validation: 16 other questions, 6 of them right, 10 reversed.
	_, nd, nu := writeFeedback(t, filepath.Join(root, "chem"), "val.jsonl", 60, 76, func(i int) bool { return i%8 < 3 }, func(i int) bool { return i%8 >= 3 })
	out := t.TempDir()
	res, log, err := ktoRun(t, "model: {path: tiny-base}\n"+
		"data: {root: "+root+", max_length: 64}\n"+
		"training:\n  objective: kto\n  kto: {desirable_weight: 1.5, undesirable_weight: 0.5}\n"+
		"  batch_size: 4\n  max_steps: 12\n  optimizer: {lr: 1e-3}\n"+
		"  eval: {every: 6, max_batches: 0, generation: {questions: 0}}\n"+
		"  checkpointing: {every: 0}\n"+
		"  tracking: {output_dir: "+out+", tensorboard: false}\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	want := 0.5 * (1.5*float64(nd) + 0.5*float64(nu)) / float64(nd+nu)
	before := res.Before.Val
	if got := before["val/loss"]; nd != 6 || nu != 10 || math.Abs(got-want) > 1e-6 {
		t.Errorf("KTO loss before training %.8f, want 0.5 (1.5·%d + 0.5·%d)/%d = %.8f (policy = reference: log-ratios and KL 0)", got, nd, nu, nd+nu, want)
	}
	if before["val/kl"] != 0 || before["val/rewards/margins"] != 0 {
		t.Errorf("before training: kl %g, margin %g; want 0 and 0", before["val/kl"], before["val/rewards/margins"])
	}
	after := res.After.Val
	if !(after["val/rewards/chosen"] > after["val/rewards/rejected"]) || after["val/loss"] >= before["val/loss"] {
		t.Errorf("after %d steps: rewards chosen %.4f, rejected %.4f, loss %.4f (before %.4f): KTO did not learn the feedback\n%s",
			res.Steps, after["val/rewards/chosen"], after["val/rewards/rejected"], after["val/loss"], before["val/loss"], log)
	}
	for _, w := range []string{
		"objective: KTO (kto loss, beta 0.1, desirable weight 1.5, undesirable weight 0.5); reference: the base model (the adapter turned off)",
		"12 steps of 4 unpaired examples (one row each, and as many mismatched rows for the KL estimate)",
		"training examples: 60 desirable, 60 undesirable",
		"validation examples: KTO loss 0.4375  reward chosen 0.0000 rejected 0.0000 margin 0.0000 kl 0.0000",
		"data.packing: does not apply to preference records (each example is a padded row",
	} {
		if !strings.Contains(log, w) {
			t.Errorf("the log does not say %q:\n%s", w, log)
		}
	}
	if !regexp.MustCompile(`step +5 +loss [0-9.]+ +reward chosen -?[0-9.]+ rejected -?[0-9.]+ margin -?[0-9.]+ kl [0-9.]+ `).MatchString(log) {
		t.Errorf("no step line with the rewards and the KL estimate:\n%s", log)
	}
	metrics, err := os.ReadFile(filepath.Join(res.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"train/rewards/chosen"`, `"train/rewards/rejected"`, `"train/kl"`, `"val/kl"`, `"val/rewards/margins"`} {
		if !bytes.Contains(metrics, []byte(key)) {
			t.Errorf("metrics.jsonl has no %s", key)
		}
	}
	t.Logf("before: %v\nafter: %v", before, after)
}

// ktoOptions are quick options of a KTO run on unpaired chemistry
// feedback (20 questions, each right and reversed).
func ktoOptions(t *testing.T, name string) Options {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	o := quickOptions(t, name)
	o.Subjects = nil
	p, _, _ := writeFeedback(t, t.TempDir(), "feedback.jsonl", 0, 20, always, always)
	o.DataRoot, o.DataFiles = "", []string{p}
	o.Objective = ObjectiveKTO
	o.Steps, o.BatchSize, o.LR, o.EvalEvery, o.EvalMaxBatches = 2, 2, 1e-3, 0, 1
	return o
}

// TestKTORefusals: what KTO cannot honour is refused before anything
// loads, with the reason (the settings DPO refuses, by the same checks);
// the wrong kind of record for the objective is refused naming it.
func TestKTORefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"a batch of one example", func(o *Options) { o.BatchSize = 1 }, "training.batch_size 1: KTO's KL estimate"},
		{"per-subject adapters", func(o *Options) { o.Mode = PerSubject }, "training.objective kto with per-subject adapters"},
		{"NEFTune", func(o *Options) { o.NEFTuneAlpha = 5 }, "training.objective kto with training.neftune_alpha"},
		{"train_on_inputs", func(o *Options) { o.TrainOnInputs = true }, "training.objective kto with data.train_on_inputs"},
		{"both weights 0", func(o *Options) { o.KTODesirableWeight, o.KTOUndesirableWeight = 0, 0 }, "both 0"},
		{"an unknown loss type", func(o *Options) { o.KTOLossType = "bco" }, `training.kto: kto: loss type "bco"`},
		{"a DPO loss under kto", func(o *Options) { o.DPOLossTypes = []string{"ipo"} }, "are DPO's, and the objective is kto"},
		{"a KTO loss under dpo", func(o *Options) { o.Objective, o.KTOLossType = ObjectiveDPO, dpo.KTOLossAPOZeroUnpaired }, "training.kto.loss_type is KTO's, and the objective is dpo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ktoOptions(t, "refused")
			tc.set(&o)
			_, err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	// apo_zero_unpaired needs no KL estimate: a batch of one is fine.
	o := ktoOptions(t, "apo")
	o.BatchSize, o.KTOLossType = 1, dpo.KTOLossAPOZeroUnpaired
	var log bytes.Buffer
	o.Log = &log
	if _, err := Run(context.Background(), o); err != nil || !strings.Contains(log.String(), "objective: KTO (apo_zero_unpaired loss, beta 0.1); reference: the base model (the adapter turned off), forwards without gradients of the examples every micro-batch") {
		t.Errorf("apo_zero_unpaired with batch size 1: %v\n%s", err, log.String())
	}
	// Its validation is named for it, not KTO's (no KL estimate).
	if l := log.String(); !strings.Contains(l, "validation examples: apo_zero_unpaired loss 0.5000 ") || strings.Contains(l, "KTO loss") {
		t.Errorf("apo_zero_unpaired's validation is not named for it:\n%s", l)
	}
	val := train.Metrics{"val/loss": 0.5, "val/rewards/chosen": 0.1, "val/rewards/rejected": -0.1, "val/rewards/margins": 0.2}
	if got := train.DescribeValidation(val, o.lossName()); got != "apo_zero_unpaired loss 0.5000  reward chosen 0.1000 rejected -0.1000 margin 0.2000" {
		t.Errorf("apo_zero_unpaired's validation is described as %q", got)
	}
	// Every objective's loss by its name (DPO's other losses included).
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Objective: ObjectiveKTO}, "KTO loss"},
		{Options{Objective: ObjectiveDPO}, "DPO loss"},
		{Options{Objective: ObjectiveDPO, DPOLossTypes: []string{dpo.LossIPO}}, "DPO (ipo) loss"},
		{Options{Objective: ObjectiveDPO, DPOLossTypes: []string{dpo.LossSimPO}, DPOSimPOGamma: 0.5, DPOLabelSmoothing: 0.1}, "DPO (simpo) loss"}, // its parameters are the objective line's
		{Options{Objective: ObjectiveDPO, DPOLossTypes: []string{dpo.LossSigmoid, dpo.LossSFT}, DPOLossWeights: []float64{1, 0.5}}, "DPO (sigmoid + 0.5×sft) loss"},
		{Options{}, ""},
	} {
		if got := tc.o.lossName(); got != tc.want {
			t.Errorf("objective %q, loss types %v: validation loss named %q, want %q", tc.o.Objective, tc.o.DPOLossTypes, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name, objective string
		file            func(t *testing.T) string
		want            string
	}{
		{"supervised data under kto", ObjectiveKTO, func(t *testing.T) string { return writeUserFile(t, t.TempDir(), "chat.jsonl", "chat", 10) }, `chat\.jsonl:\d+: not a preference record \(training\.objective kto reads`},
		{"unpaired data under dpo", ObjectiveDPO, func(t *testing.T) string {
			p, _, _ := writeFeedback(t, t.TempDir(), "fb.jsonl", 0, 10, always, always)
			return p
		}, `fb\.jsonl:\d+: an unpaired preference record .*training\.objective kto learns from unpaired feedback`},
		{"unpaired data under sft", ObjectiveSFT, func(t *testing.T) string {
			p, _, _ := writeFeedback(t, t.TempDir(), "fb.jsonl", 0, 10, always, always)
			return p
		}, `fb\.jsonl:\d+: an unpaired feedback record .*training\.objective: kto`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ktoOptions(t, "kind")
			o.Objective, o.DataFiles = tc.objective, []string{tc.file(t)}
			_, err := Run(context.Background(), o)
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestWrongKindNamesFirstRecord: a record of the wrong kind for the
// objective is named at its line, the first in the files' order (not the
// first the hold-out's shuffle puts first): supervised prompt/completion
// pairs under kto (saying that feedback needs its label), in a file of
// their own or after a file of feedback, and feedback after pairs under
// dpo.
func TestWrongKindNamesFirstRecord(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	sup := writeUserFile(t, dir, "sup.jsonl", "input_output", 20)
	fb, _, _ := writeFeedback(t, dir, "fb.jsonl", 0, 10, always, always)
	pairs := writePreferences(t, dir, "chemistry", 20, true)
	for _, tc := range []struct {
		name, objective string
		files           []string
		want            string
	}{
		{"supervised pairs under kto", ObjectiveKTO, []string{sup}, sup + `:1: not a preference record (training.objective kto reads records of a prompt with a completion labelled desirable or not, or pairs of a chosen and a rejected completion; this one is a supervised chat example: a record of "prompt" and "completion" is feedback only with its "label", true or false, and without one a supervised pair)`},
		{"feedback, then supervised pairs, under kto", ObjectiveKTO, []string{fb, sup}, sup + ":1: not a preference record"},
		{"pairs, then feedback, under dpo", ObjectiveDPO, []string{pairs, fb}, fb + ":1: an unpaired preference record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fileOpts(tc.files...)
			o.Objective = tc.objective
			_, _, err := loadLogged(t, o, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestKTOData: preference pairs under kto are unpaired into a desirable
// and an undesirable example each (said), the counts of each kind are
// said, and unbalanced counts get TRL's warning with the KTO paper's
// ranges for the weights; data whose loss would be 0 whatever the model
// does is refused, all before training (checkPreferenceTraining), not by
// the loading an evaluation shares.
func TestKTOData(t *testing.T) {
	load := func(o Options) (*dataset, string, error) {
		ds, log, err := loadLogged(t, o, 0)
		if err != nil {
			return ds, log, err
		}
		var w strings.Builder
		err = (&session{o: o, log: &w, data: ds}).checkPreferenceTraining()
		return ds, log + w.String(), err
	}
	o := fileOpts(writePreferences(t, t.TempDir(), "chemistry", 20, true))
	o.Objective, o.ValSplit = ObjectiveKTO, 0
	ds, log, err := load(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.pairs) != 40 || !strings.Contains(log, "training.objective kto: 20 preference records unpaired into a desirable example (the chosen completion) and an undesirable one") ||
		!strings.Contains(log, "training examples: 20 desirable, 20 undesirable") || strings.Contains(log, "warning") {
		t.Errorf("20 pairs under kto: %d examples, log:\n%s", len(ds.pairs), log)
	}
	for _, e := range ds.pairs {
		if (e.Chosen == nil) == (e.Rejected == nil) {
			t.Fatalf("an example with %d chosen and %d rejected tokens: not unpaired", len(e.Chosen), len(e.Rejected))
		}
	}

	// 3 desirable, 12 undesirable: TRL's ranges are desirable_weight in
	// [12/3, 1.33·12/3] = [4, 5.32] or undesirable_weight in
	// [3/12/1.33, 3/12] = [0.19, 0.25].
	p, _, _ := writeFeedback(t, t.TempDir(), "skewed.jsonl", 0, 12, func(i int) bool { return i < 3 }, always)
	o.DataFiles = []string{p}
	if _, log, err := load(o); err != nil || !strings.Contains(log, "warning: training.objective kto: 3 desirable and 12 undesirable examples, and the weights (desirable 1, undesirable 1) do not balance them as the KTO paper recommends (eq. 8): set training.kto.desirable_weight in [4, 5.32] or undesirable_weight in [0.19, 0.25] (not both)") {
		t.Errorf("unbalanced: %v\n%s", err, log)
	}
	if _, log, err := loadLogged(t, o, 0); err != nil || strings.Contains(log, "warning") || strings.Contains(log, "training examples:") {
		t.Errorf("loading the data alone (as an evaluation does) advises on training: %v\n%s", err, log)
	}
	o.KTODesirableWeight = 4.5
	if _, log, err := load(o); err != nil || strings.Contains(log, "warning") {
		t.Errorf("a desirable_weight in the range still warns: %v\n%s", err, log)
	}

	// Only desirable examples: warned; with their weight 0, refused.
	p, _, _ = writeFeedback(t, t.TempDir(), "thumbs-up.jsonl", 0, 8, always, func(int) bool { return false })
	o.DataFiles, o.KTODesirableWeight = []string{p}, 1
	if _, log, err := load(o); err != nil || !strings.Contains(log, "warning: training.objective kto: every training example is desirable") || strings.Contains(log, "do not balance") {
		t.Errorf("only desirable examples: want one warning, without weights advice (no weight balances one kind against none): %v\n%s", err, log)
	}
	// 3 desirable, 12 undesirable with the undesirable left out on purpose:
	// no advice to balance them.
	p, _, _ = writeFeedback(t, t.TempDir(), "skewed.jsonl", 0, 12, func(i int) bool { return i < 3 }, always)
	o.DataFiles, o.KTOUndesirableWeight = []string{p}, 0
	if _, log, err := load(o); err != nil || strings.Contains(log, "warning") {
		t.Errorf("undesirable_weight 0: %v\n%s", err, log)
	}
	o.KTOUndesirableWeight = 1
	// One example: no other completion for the KL estimate.
	p, _, _ = writeFeedback(t, t.TempDir(), "one.jsonl", 0, 1, always, func(int) bool { return false })
	o.DataFiles = []string{p}
	if _, _, err := load(o); err == nil || !strings.Contains(err.Error(), "1 training example: KTO's KL estimate pairs each prompt with another example's completion") {
		t.Errorf("one example: %v", err)
	}
	p, _, _ = writeFeedback(t, t.TempDir(), "thumbs-up.jsonl", 0, 8, always, func(int) bool { return false })
	o.DataFiles = []string{p}
	o.KTODesirableWeight = 0
	if _, _, err := load(o); err == nil || !strings.Contains(err.Error(), "8 desirable examples (desirable_weight 0) and 0 undesirable ones (undesirable_weight 1): the loss would be 0 whatever the model does") {
		t.Errorf("only desirable examples weighted 0: %v", err)
	}
}

// TestPreferenceAdviceOnRankZero: with several workers, the advice and
// warnings checkPreferenceTraining prints before a preference run trains
// (packing, KTO's counts and their balance) are printed by rank 0 alone,
// where every rank printed them; a refusal still comes on every rank,
// which must each stop.
func TestPreferenceAdviceOnRankZero(t *testing.T) {
	p, _, _ := writeFeedback(t, t.TempDir(), "skewed.jsonl", 0, 12, func(i int) bool { return i < 3 }, always)
	o := fileOpts(p)
	o.Objective, o.ValSplit, o.Pack = ObjectiveKTO, 0, true
	ds, _, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	comms := commtest.Local(2)
	check := func(rank int, o Options) (string, error) {
		o.Comm = comms[rank] // checkPreferenceTraining runs no collective
		var w strings.Builder
		err := (&session{o: o, log: &w, data: ds}).checkPreferenceTraining()
		return w.String(), err
	}
	if log, err := check(0, o); err != nil || !strings.Contains(log, "data.packing: does not apply") ||
		!strings.Contains(log, "training examples: 3 desirable, 12 undesirable") || !strings.Contains(log, "warning: training.objective kto: 3 desirable and 12 undesirable") {
		t.Errorf("rank 0: %v\n%s", err, log)
	}
	if log, err := check(1, o); err != nil || log != "" {
		t.Errorf("rank 1 printed the advice too: %v\n%s", err, log)
	}
	o.KTODesirableWeight, o.KTOUndesirableWeight = 0, 0
	for rank := range 2 {
		if _, err := check(rank, o); err == nil || !strings.Contains(err.Error(), "the loss would be 0 whatever the model does") {
			t.Errorf("rank %d: weights 0: %v", rank, err)
		}
	}
}

// TestKTOLossTypeNames: the config's KTO loss_type names are the
// objective's.
func TestKTOLossTypeNames(t *testing.T) {
	if !slices.Equal(config.KTOLossTypes, dpo.KTOLossTypes) {
		t.Errorf("config.KTOLossTypes %q, dpo.KTOLossTypes %q", config.KTOLossTypes, dpo.KTOLossTypes)
	}
}

// TestKTOResumesExactly: a KTO run stopped after 3 steps (its checkpoint)
// and resumed to 6 continues as the uninterrupted run does, bit for bit:
// the unpaired loader's position, its batches' mismatched rows and the
// dropout streams come back from the checkpoint.
func TestKTOResumesExactly(t *testing.T) {
	o := ktoOptions(t, "full")
	o.Schedule, o.WarmupSteps, o.CheckpointEvery = "constant", 0, 3
	checkResumesExactly(t, o)
}

// TestInitAdapterIsTheKTOReference: KTO continuing a supervised adapter
// is held to that adapter, frozen, as DPO is (the same reference): before
// training the policy is the reference, so every log-ratio and the KL
// estimate are 0 and the loss is 1 − σ(0) = 0.5.
func TestInitAdapterIsTheKTOReference(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	_, dir := sftAdapter(t)
	o := ktoOptions(t, "kto-after-sft")
	o.InitAdapter = dir
	var log strings.Builder
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if got := res.Before.Val["val/loss"]; math.Abs(got-0.5) > 1e-6 || res.Before.Val["val/kl"] != 0 {
		t.Errorf("KTO loss before training %.8f, kl %g; want 0.5 and 0 (the policy is its reference)", got, res.Before.Val["val/kl"])
	}
	if !strings.Contains(log.String(), "reference: the adapter the run continues, as loaded from "+dir) {
		t.Errorf("the log does not name the reference:\n%s", log.String())
	}
}
