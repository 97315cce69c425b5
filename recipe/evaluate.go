package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
)

// This file is evaluation: a run's before/after measurements (validation
// loss and held-out questions), their printing and logging, and
// `ftune eval` (Evaluate) on a base with saved adapters.

// evaluate measures the model as it is now: validation metrics and the
// held-out questions (routed per subject when adapters are). A cancelled
// ctx stops it (see stoppedEvaluating).
func (s *session) evaluate(ctx context.Context, t *train.Trainer) (Evaluation, error) {
	var ev Evaluation
	var err error
	if t.Val != nil {
		if ev.Val, err = t.Validate(ctx, t.Val); err != nil {
			return ev, err
		}
		if err := s.finiteLoss(ev.Val); err != nil {
			return ev, err
		}
	}
	var before func(string) error
	if s.routed != nil {
		before = s.routed.SetActive
	}
	if _, rank := s.o.world(); rank != 0 {
		return ev, nil // held-out answers are rank 0's (not sharded)
	}
	gen := nn.GenerateOptions{MaxNewTokens: s.o.MaxNewTokens, StopTokens: s.stopTokens()}
	if size, _ := s.o.world(); size > 1 {
		// The other workers wait for this one at Fit's first collective,
		// which agrees on stopping: leaving now would leave them waiting.
		ctx = context.WithoutCancel(ctx)
	}
	ev.QA, err = train.EvaluateQA(ctx, s.model, s.tp.tok, s.data.questions, gen, before)
	if s.routed != nil {
		s.routed.Disable()
	}
	return ev, err
}

// finiteLoss refuses a validation whose loss is NaN or Inf: a loss
// computed from finite logits is finite, so the model's weights (or its
// adapter's) hold NaN or Inf, and every number measured from them is
// garbage. One scalar is checked: a non-finite batch loss makes the sum,
// and so val/loss, non-finite. The error wraps nn.ErrNonFinite, as
// generation's does.
func (s *session) finiteLoss(m train.Metrics) error {
	loss, ok := m["val/loss"]
	if !ok || !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		return nil
	}
	return fmt.Errorf("recipe: evaluating %s: validation loss is %v: %w: the model's weights or its adapter hold NaN or Inf values", s.evaluated(), loss, nn.ErrNonFinite)
}

// evaluated names the model evaluated: the base folder, and the adapter
// (the one loaded, or the one being trained in a run folder).
func (s *session) evaluated() string {
	what := "model " + s.o.ModelDir
	switch {
	case s.adapterDir != "":
		what += " with adapter " + s.adapterDir
	case s.run != nil && len(s.adapters) > 0:
		what += " with the adapter of run folder " + s.run.Dir
	}
	return what
}

// stopTokens end a generated answer: the model's one rule
// (nn.Model.StopTokens), with the end of a turn of the chat template the
// questions are asked in, as ftune generate's chats stop.
func (s *session) stopTokens() []int {
	if s.tp.tmpl == nil {
		return s.model.StopTokens(s.tp.tok)
	}
	return s.model.StopTokens(s.tp.tok, s.tp.tmpl.EndOfTurn())
}

// printEval prints ev's scores to w.
func (s *session) printEval(w io.Writer, ev Evaluation) {
	if _, isDPO := ev.Val["val/rewards/accuracies"]; isDPO {
		fmt.Fprintf(w, "validation pairs: %s %.4f  reward accuracy %.3f  margin %.4f (chosen %.4f, rejected %.4f)\n",
			s.o.lossName(), ev.Val["val/loss"], ev.Val["val/rewards/accuracies"], ev.Val["val/rewards/margins"], ev.Val["val/rewards/chosen"], ev.Val["val/rewards/rejected"])
	} else if r := train.UnpairedRewards(ev.Val, "val/", 4); r != "" {
		fmt.Fprintf(w, "validation examples: %s %.4f%s\n", s.o.lossName(), ev.Val["val/loss"], r)
	} else if ev.Val != nil {
		fmt.Fprintf(w, "validation: loss %.4f  perplexity %.2f  token accuracy %.3f\n", ev.Val["val/loss"], ev.Val["val/perplexity"], ev.Val["val/token_accuracy"])
	}
	if ev.QA == nil || len(ev.QA.Results) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(ev.QA.ExactMatch))
	for _, n := range names {
		label := n
		if n == "" {
			label = "all"
		}
		fmt.Fprintf(w, "questions %-12s exact match %.3f  contains %.3f  multiple choice %.3f (length-normalised %.3f)\n", label, ev.QA.ExactMatch[n], ev.QA.Contains[n], ev.QA.ChoiceAccuracy[n], ev.QA.ChoiceNormAccuracy[n])
	}
}

func (s *session) printSamples(before, after Evaluation) {
	if s.o.Samples <= 0 || after.QA == nil || len(after.QA.Results) == 0 {
		return
	}
	fmt.Fprintf(s.log, "\n== sample answers (before → after)\n")
	shown := map[string]int{}
	for i, r := range after.QA.Results {
		if shown[r.Subject] >= s.o.Samples {
			continue
		}
		shown[r.Subject]++
		if before.QA == nil || i >= len(before.QA.Results) { // resumed: not measured again
			fmt.Fprintf(s.log, "[%s] %s\n  reference: %s\n  after:     %q\n", r.Subject, r.Question, r.Answer, r.Generated)
			continue
		}
		b := before.QA.Results[i].Generated
		fmt.Fprintf(s.log, "[%s] %s\n  reference: %s\n  before:    %q\n  after:     %q\n", r.Subject, r.Question, r.Answer, b, r.Generated)
	}
}

// Metrics are ev's scores by the names a run logs them under
// eval_before/ and eval_after/ (logEval): the validation metrics as
// measured (val/loss, val/<subject>/loss, ...), and per subject, or all,
// exact_match/<subject|all>, with multiple_choice/ and
// multiple_choice_norm/ for the subjects whose questions have choices.
func (ev Evaluation) Metrics() map[string]float64 {
	m := map[string]float64{}
	maps.Copy(m, ev.Val)
	if ev.QA != nil {
		for subj, v := range ev.QA.ExactMatch {
			key := "all"
			if subj != "" {
				key = subj
			}
			m["exact_match/"+key] = v
			if mc, ok := ev.QA.ChoiceAccuracy[subj]; ok { // only subjects with choices
				m["multiple_choice/"+key] = mc
				m["multiple_choice_norm/"+key] = ev.QA.ChoiceNormAccuracy[subj]
			}
		}
	}
	return m
}

// logEval records an evaluation as eval_<tag>/<key> (track.BeforeAfter
// reads them back into the report's table).
func logEval(run *track.Run, step int, tag string, ev Evaluation) {
	m := map[string]float64{}
	for k, v := range ev.Metrics() {
		m["eval_"+tag+"/"+k] = v
	}
	_ = run.Log(step, m)
}

// adapterTemplateFile is the chat template file an adapter folder
// carries (chat_template.jinja, written by runs beside every adapter) when
// the evaluation names no template of its own (data.template auto) and it
// is not the model's: the template the adapter was trained with, as
// ftune.Load prompts with it. "" otherwise (also for an adapter without
// one: from another tool, or from before). An adapter trained under
// data.template none carries the stand-in that setting renders with
// (plainSource): it is PlainTemplate, so that training on from it, or
// evaluating it, reads text pairs as its run did (the stand-in, read as
// a template file, would render them as a chat: no EOS learnt, the
// prompt's merge rule lost).
func adapterTemplateFile(o Options, adapterDir string) (string, error) {
	if adapterDir == "" || (o.Template != "" && o.Template != "auto") {
		return "", nil
	}
	path := filepath.Join(adapterDir, chat.TemplateFile)
	src, err := fsutil.ReadFileLimit(path, chat.MaxTemplateBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if string(src) == plainSource {
		return PlainTemplate, nil
	}
	if own, err := chat.Load(o.ModelDir); err == nil && own.Source() == string(src) {
		return "", nil
	}
	return path, nil
}

// Evaluate measures a base model, with a PEFT adapter when adapterDir is
// set, on the subjects' validation split (loss, perplexity, token
// accuracy) and held-out questions (exact match, contains, multiple
// choice). An adapterDir holding one folder per subject (as per-subject
// runs export) routes each subject's questions through its own adapter.
//
// A cancelled ctx stops it between two batches or two generated tokens,
// with an error wrapping ctx.Err().
func Evaluate(ctx context.Context, o Options, adapterDir string) (Evaluation, error) {
	s := &session{o: o, log: io.Discard, adapters: map[string]*lora.Adapter{}}
	if o.Log != nil {
		s.log = o.Log
	}
	if t, err := adapterTemplateFile(o, adapterDir); err != nil {
		return Evaluation{}, err
	} else if t == PlainTemplate {
		fmt.Fprintf(s.log, "note: data.template none: the adapter was trained on plain text pairs (its %s is the stand-in that setting writes)\n", chat.TemplateFile)
		s.o.Template = t
	} else if t != "" {
		fmt.Fprintf(s.log, "note: chat template: the adapter's %s, which it was trained with, not the base's\n", t)
		s.o.Template = t
	}
	if err := s.loadBase(ctx); err != nil {
		return Evaluation{}, err
	}
	if adapterDir != "" {
		if err := s.loadAdapters(adapterDir); err != nil {
			return Evaluation{}, err
		}
		s.adapterDir = adapterDir
	}
	if !s.data.evaluable(s.log) {
		return Evaluation{}, fmt.Errorf("recipe: no validation or test data to evaluate on (add val or test files, or hold out a share with data.val_split)")
	}
	t := &train.Trainer{Model: s.model, Cfg: train.Config{ValMaxBatches: o.EvalMaxBatches}}
	if o.preference() {
		obj, err := s.preferenceObjective()
		if err != nil {
			return Evaluation{}, err
		}
		if _, t.Val, _, err = s.preferenceLoaders(max(o.BatchSize, 1)); err != nil {
			return Evaluation{}, err
		}
		t.Validation = obj.Validation(o.EvalMaxBatches)
	} else if len(s.data.val) > 0 {
		vl, err := train.NewRowLoader(s.data.val, s.data.subjects, max(o.BatchSize, 1), false, 0, s.tp.pad, s.model.Backend)
		if err != nil {
			return Evaluation{}, err
		}
		t.Val = vl
	}
	s.sayValidationCap(t)
	if s.routed != nil {
		t.Forward = func(tp *autograd.Tape, b train.Batch, fo nn.ForwardOptions) (nn.Output, error) {
			return s.routed.ForwardRouted(tp, b.Batch, b.Subjects, fo)
		}
	}
	ev, err := s.evaluate(ctx, t)
	if err == nil {
		w := o.Results
		if w == nil {
			w = s.log
		}
		s.printEval(w, ev)
	}
	return ev, err
}

// loadAdapters attaches a PEFT adapter folder, or one folder per subject.
func (s *session) loadAdapters(dir string) error {
	if nn.Exists(dir) || fileExists(filepath.Join(dir, "adapter_config.json")) {
		if err := track.CheckAdapter(dir); err != nil {
			return err
		}
		a, err := lora.Load(s.model, dir, "default")
		if err != nil {
			return err
		}
		s.adapters["default"] = a
		return a.Attach(s.model)
	}
	s.routed = lora.NewSubjectAdapterModel(s.model)
	for _, name := range s.data.subjects {
		sub := filepath.Join(dir, name)
		if !fileExists(filepath.Join(sub, "adapter_config.json")) {
			return fmt.Errorf("recipe: %s holds neither adapter_config.json nor an adapter folder for subject %q", dir, name)
		}
		if err := track.CheckAdapter(sub); err != nil {
			return err
		}
		if err := s.routed.Load(sub, name); err != nil {
			return err
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
