package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/train/dpo"
)

// This file is ftune data validate under training.objective dpo or kto:
// preference records read and tokenised as the run reads them
// (recipe.Text.TokenizePreferences: DPO's pairs, KTO's unpaired
// examples), counted, and with --show written prompt and completions.

// preferenceSplit is one subject split of preference records.
type preferenceSplit struct {
	subject string
	split   subject.Split
	exs     []format.Example
}

// preferenceSplits reads the inputs' training records, and a subject
// folder's validation records, as a run reads them; what reading says (a
// data file's kind and shape, the records skipped) goes to log. A split
// that cannot be read is an error line on log and counts in failed.
func preferenceSplits(ctx context.Context, env dataEnv, skip bool, log io.Writer) (splits []preferenceSplit, failed int) {
	for _, in := range env.inputs {
		if s := in.Folder; s != nil {
			for _, split := range []subject.Split{subject.Train, subject.Val} {
				if _, ok := s.Files[split]; !ok {
					continue
				}
				exs, rep, err := s.Load(split, env.readOptions(skip))
				if err != nil {
					fmt.Fprintf(log, "%s: error: %v\n", in.Name, err)
					failed++
					continue
				}
				recipe.SayHowRead(log, rep)
				splits = append(splits, preferenceSplit{in.Name, split, exs})
			}
			continue
		}
		in.Format.Skip = skip
		exs, _, err := recipe.ReadDataFiles(ctx, in, log)
		if err != nil {
			fmt.Fprintf(log, "%s: error: %v\n", in.Name, err)
			failed++
			continue
		}
		splits = append(splits, preferenceSplit{in.Name, subject.Train, exs})
	}
	return splits, failed
}

// validatePreferences reports, per subject split, the preference records
// read and what the run trains on of them: DPO's pairs or KTO's examples
// (with how many are desirable), truncated to seqLen or dropped (the
// prompt alone fills it), the records skipped (data.skip_bad) and the
// tokens of the rows. It fails as the run would: a record of the wrong
// kind, an empty or twice the same completion, a split of which nothing
// fits.
func validatePreferences(ctx context.Context, w io.Writer, env dataEnv, seqLen int, skip bool) error {
	obj := env.opts.Objective
	kto := obj == recipe.ObjectiveKTO
	splits, failed := preferenceSplits(ctx, env, skip, w)
	if err := interrupted(ctx, "validate"); err != nil {
		return err
	}
	items := "pairs"
	if kto {
		items = "examples"
	}
	var table, notes strings.Builder
	fmt.Fprintf(&table, "%-16s %-5s %8s %8s %9s %6s %6s %8s", "subject", "split", "records", items, "tokens", "trunc", "drop", "skipped")
	if kto {
		fmt.Fprintf(&table, " %9s %11s", "desirable", "undesirable")
	}
	table.WriteString("\n")
	for _, s := range splits {
		var said bytes.Buffer
		pairs, st, err := env.text.TokenizePreferences(ctx, obj, s.exs, seqLen, skip, &said)
		if err := interrupted(ctx, "validate"); err != nil {
			return err
		}
		for line := range strings.Lines(said.String()) {
			fmt.Fprintf(&notes, "%s: note: %s", s.subject, line)
		}
		if err != nil {
			fmt.Fprintf(&notes, "%s: error: %v\n", s.subject, err)
			failed++
			continue
		}
		fmt.Fprintf(&table, "%-16s %-5s %8d %8d %9d %6d %6d %8d", s.subject, s.split, len(s.exs), len(pairs), st.Tokens, st.Truncated, st.Dropped, st.Skipped)
		if kto {
			desirable := 0
			for _, p := range pairs {
				if p.Chosen != nil {
					desirable++
				}
			}
			fmt.Fprintf(&table, " %9d %11d", desirable, len(pairs)-desirable)
		}
		table.WriteString("\n")
		for _, why := range st.SkipErrors {
			fmt.Fprintf(&notes, "%s: skipped: %s\n", s.subject, why)
		}
		if n := st.Skipped - len(st.SkipErrors); n > 0 {
			fmt.Fprintf(&notes, "%s: skipped: %d more\n", s.subject, n)
		}
		if len(pairs) == 0 && s.split == subject.Train {
			fmt.Fprintf(&notes, "%s: error: no preference record fits data.max_length %d (%d dropped: the prompt alone fills it; %d skipped)\n", s.subject, seqLen, st.Dropped, st.Skipped)
			failed++
		}
	}
	fmt.Fprintf(w, "training.objective %s: %s as the run tokenises them (the val_split share is still among the training records)\n", obj, items)
	fmt.Fprint(w, table.String())
	fmt.Fprint(w, notes.String())
	if failed > 0 {
		return fmt.Errorf("data: %s has problems (see the report above)", strings.Join(env.where, ", "))
	}
	return nil
}

// showPreferences writes the first n preference records as the run
// tokenises them: each one's prompt (context) and its completions
// (learnt: the loss reads their log-likelihoods), DPO's chosen and
// rejected, or KTO's completion with its label (a pair is two of KTO's
// examples), and whether the completions were truncated to seqLen or the
// record dropped.
func showPreferences(ctx context.Context, w io.Writer, env dataEnv, seqLen int, skip bool, n int, v viewer) error {
	obj := env.opts.Objective
	exs := firstExamples(ctx, env, skip, n, w)
	fmt.Fprintf(w, "The first %d preference records as ftune train tokenises them under training.objective %s (of the files as read: data.val_split may hold some out for validation).\n", len(exs), obj)
	fmt.Fprint(w, showLegend("The completions' tokens (the loss reads their log-likelihoods)", v.color))
	for i, s := range exs {
		if err := interrupted(ctx, "validate"); err != nil {
			return err
		}
		ex := s.ex
		head := fmt.Sprintf("\n── record %d: %s (subject %s)", i+1, ex.Source, s.subject)
		var said bytes.Buffer
		one := []format.Example{ex}
		fitted, st, err := env.text.TokenizePreferences(ctx, obj, one, seqLen, skip, &said)
		if err != nil {
			fmt.Fprintf(w, "%s: error: the run stops here: %v\n", head, err)
			continue
		}
		if st.Skipped > 0 {
			fmt.Fprintf(w, "%s: skipped (data.skip_bad): %s\n", head, st.SkipErrors[0])
			continue
		}
		whole, _, err := env.text.TokenizePreferences(ctx, obj, one, 0, skip, io.Discard)
		if err != nil {
			return err
		}
		if len(fitted) == 0 {
			why := fmt.Sprintf("its prompt, %d tokens, leaves no room for a completion within %d (data.max_length)", len(whole[0].Prompt), seqLen)
			if len(whole[0].Prompt) < seqLen {
				why = fmt.Sprintf("its completions are the same within %d tokens (data.max_length): the pair would teach nothing", seqLen)
			}
			fmt.Fprintf(w, "%s: dropped: %s\n", head, why)
			continue
		}
		fmt.Fprintf(w, "%s: prompt %d tokens\n", head, len(fitted[0].Prompt))
		for line := range strings.Lines(said.String()) {
			fmt.Fprintf(w, "note: %s", line)
		}
		prompt, err := v.completion(nil, fitted[0].Prompt, false)
		if err != nil {
			return fmt.Errorf("%s: %w", ex.Source, err)
		}
		fmt.Fprintf(w, "prompt:\n%s", endLine(prompt))
		for k, p := range fitted {
			var full dpo.Pair // before truncation, to say which completions were cut
			if len(whole) == len(fitted) {
				full = whole[k]
			}
			for _, c := range []struct {
				name         string
				tokens, full []int32
			}{{"chosen", p.Chosen, full.Chosen}, {"rejected", p.Rejected, full.Rejected}} {
				if c.tokens == nil {
					continue
				}
				name := c.name
				if obj == recipe.ObjectiveKTO {
					name = map[string]string{"chosen": "completion, desirable (label true)", "rejected": "completion, undesirable (label false)"}[c.name]
				}
				fate := ""
				if len(c.full) > len(c.tokens) {
					fate = fmt.Sprintf(", cut from %d to fit data.max_length %d", len(c.full), seqLen)
				}
				text, err := v.completion(p.Prompt, c.tokens, true)
				if err != nil {
					return fmt.Errorf("%s: %w", ex.Source, err)
				}
				fmt.Fprintf(w, "%s (%d tokens%s):\n%s", name, len(c.tokens), fate, endLine(text))
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

// completion is the text of the completion's tokens after prompt's, marked
// learnt when learnt: the tokens' texts are those of the whole sequence,
// so the completion's first text is as it follows the prompt.
func (v viewer) completion(prompt, completion []int32, learnt bool) (string, error) {
	ids := append(append([]int32(nil), prompt...), completion...)
	texts, err := tokenTexts(v.tok, ids)
	if err != nil {
		return "", err
	}
	marks := make([]bool, len(completion))
	for j := range marks {
		marks[j] = learnt
	}
	return v.markedTexts(texts[len(prompt):], marks), nil
}
