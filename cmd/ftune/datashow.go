package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/recipe"
)

// This file is ftune data validate --show: the first examples as ftune
// train sees them (Axolotl's preprocess --debug), tokenised by the run's
// own preprocessor and shown with the tokens it learns marked.

// Marks of the plain rendering. Each of these characters met in the data
// itself is written as ⟨U+XXXX⟩, so every one shown is a mark.
const (
	markLearnt   = "⟦" // learnt text opens (its label is the token)
	markContext  = "⟧" // and closes
	markNewline  = "↵" // a line break, followed by one
	markTab      = "⇥"
	markEscape   = "⟨" // ⟨U+XXXX⟩: a character that does not print; ⟨0xNN⟩: a byte that is not UTF-8
	markEscapeTo = "⟩"
	marks        = markLearnt + markContext + markNewline + markTab + markEscape + markEscapeTo
)

// ANSI attributes of learnt text on a terminal: green, underlined (so
// that learnt spaces show).
const (
	ansiLearnt = "\x1b[32;4m"
	ansiReset  = "\x1b[0m"
)

// showLegend says how --show writes examples; learnt names the tokens
// marked.
func showLegend(learnt string, color bool) string {
	how := "are between ⟦ and ⟧"
	if color {
		how = "are green and underlined"
	}
	return fmt.Sprintf("%s %s; the rest is context. ↵ is a line break, ⇥ a tab, ⟨U+XXXX⟩ a character that does not print (or one of ⟦ ⟧ ↵ ⇥ ⟨ ⟩ in the data itself), ⟨0xNN⟩ a byte that is not UTF-8; special tokens are written as their text.\n", learnt, how)
}

// viewer writes tokens as text with the learnt ones marked.
type viewer struct {
	tok   *tokenizer.Tokenizer
	color bool
}

// useColor decides --color: "always", "never", or "auto" (w is a
// terminal and NO_COLOR is unset).
func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto", "":
		f, ok := w.(*os.File)
		return ok && isTerminal(f) && os.Getenv("NO_COLOR") == "", nil
	}
	return false, fmt.Errorf("--color %q: auto, always or never", mode)
}

// tokenTexts is the text each of ids adds to the decoding of those before
// it (the tokenizer's stream decoder, special tokens as their text), so
// that the texts of any run of tokens are exactly theirs. A character
// whose bytes several tokens hold is the text of the last of them.
func tokenTexts(tok *tokenizer.Tokenizer, ids []int32) ([]string, error) {
	d := tok.NewStreamDecoder(false)
	out := make([]string, len(ids))
	for j, id := range ids {
		s, err := d.Next(int(id))
		if err != nil {
			return nil, fmt.Errorf("decode token %d (id %d): %w", j, id, err)
		}
		out[j] = s
	}
	rest, err := d.Flush()
	if err != nil {
		return nil, err
	}
	if len(out) > 0 {
		out[len(out)-1] += rest
	}
	return out, nil
}

// marked is ids as text, the runs of learnt tokens (learnt[j]) marked.
func (v viewer) marked(ids []int32, learnt []bool) (string, error) {
	texts, err := tokenTexts(v.tok, ids)
	if err != nil {
		return "", err
	}
	return v.markedTexts(texts, learnt), nil
}

// markedTexts is marked of the tokens' texts (tokenTexts).
func (v viewer) markedTexts(texts []string, learnt []bool) string {
	var b strings.Builder
	for j := 0; j < len(texts); {
		k := j
		var run strings.Builder
		for ; k < len(texts) && learnt[k] == learnt[j]; k++ {
			run.WriteString(texts[k])
		}
		s := visible(run.String())
		switch {
		case !learnt[j]:
			b.WriteString(s)
		case v.color: // coloured line by line: a pager resets attributes at line ends
			for line := range strings.Lines(s) {
				body, nl := strings.CutSuffix(line, "\n")
				b.WriteString(ansiLearnt + body + ansiReset)
				if nl {
					b.WriteString("\n")
				}
			}
		default:
			b.WriteString(markLearnt + s + markContext)
		}
		j = k
	}
	return b.String()
}

// labelled is marked for a tokenised example: learnt where its label is
// not prep.IgnoreIndex.
func (v viewer) labelled(t prep.Tokenized) (string, error) {
	learnt := make([]bool, len(t.Labels))
	for j, l := range t.Labels {
		learnt[j] = l != prep.IgnoreIndex
	}
	return v.marked(t.IDs, learnt)
}

// visible is s with what does not print made visible (see the marks).
func visible(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "%s0x%02X%s", markEscape, s[i], markEscapeTo)
		case r == '\n':
			b.WriteString(markNewline + "\n")
		case r == '\t':
			b.WriteString(markTab)
		case strings.ContainsRune(marks, r) || r != ' ' && !unicode.IsPrint(r):
			fmt.Fprintf(&b, "%sU+%04X%s", markEscape, r, markEscapeTo)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// endLine is s ending with a line break (one that is not in the text:
// those are written ↵).
func endLine(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// shown is an example to show and the subject it is one of.
type shown struct {
	subject string
	ex      format.Example
}

// firstExamples are the first n training examples of the inputs, read as
// a run reads them (before data.val_split holds its share out). An input
// that cannot be read is said on log and passed: the report that follows
// names its error.
func firstExamples(ctx context.Context, env dataEnv, skip bool, n int, log io.Writer) []shown {
	var out []shown
	for _, in := range env.inputs {
		if len(out) >= n || ctx.Err() != nil {
			break
		}
		var exs []format.Example
		var err error
		if s := in.Folder; s != nil {
			exs, _, err = s.Load(subject.Train, env.readOptions(skip))
		} else {
			in.Format.Skip = skip
			exs, _, err = recipe.ReadDataFiles(ctx, in, nil)
		}
		if err != nil {
			fmt.Fprintf(log, "--show: subject %s not shown: %v\n", in.Name, err)
			continue
		}
		for _, ex := range exs[:min(len(exs), n-len(out))] {
			out = append(out, shown{subject: in.Name, ex: ex})
		}
	}
	return out
}

// showExamples writes the first n training examples of env's inputs as
// p, the run's preprocessor, tokenises them: each one's tokens with the
// learnt ones marked, how many, and whether it was truncated, split into
// pieces (data.long_text: split, prep.SplitLong) or dropped.
func showExamples(ctx context.Context, w io.Writer, env dataEnv, p *prep.Preprocessor, skip bool, n int, v viewer) error {
	exs := firstExamples(ctx, env, skip, n, w)
	fmt.Fprintf(w, "The first %d training examples as ftune train tokenises them (of the files as read: data.val_split may hold some out for validation).\n", len(exs))
	fmt.Fprint(w, showLegend("Learnt tokens (those whose labels the loss reads; a document's first token is never predicted, whatever its mark: nothing precedes it in its row)", v.color))
	maxLen := p.Opts.MaxLen
	for i, s := range exs {
		if err := interrupted(ctx, "validate"); err != nil {
			return err
		}
		ex := s.ex
		kind := "text"
		if ex.IsChat() {
			kind = "chat"
		}
		head := fmt.Sprintf("\n── example %d: %s (subject %s), %s", i+1, ex.Source, s.subject, kind)
		t, o, err := p.Tokenize(ex)
		if err != nil {
			fate := "error: the run stops here"
			if skip && (errors.Is(err, prep.ErrRecordLimit) || recipe.BadRecord(err)) {
				fate = "skipped (data.skip_bad)"
			}
			fmt.Fprintf(w, "%s: %s: %v\n", head, fate, err)
			continue
		}
		switch o {
		case prep.Dropped:
			fmt.Fprintf(w, "%s: dropped: longer than %d tokens (data.max_length; overflow drop)\n", head, maxLen)
			continue
		case prep.DroppedNoLabel:
			fmt.Fprintf(w, "%s: dropped: nothing to learn within %d tokens (data.max_length: the prompt fills it, or the record has no answer)\n", head, maxLen)
			continue
		}
		learnt := 0
		for _, l := range t.Labels {
			if l != prep.IgnoreIndex {
				learnt++
			}
		}
		fate := "kept whole"
		if o == prep.Truncated {
			fate = fmt.Sprintf("truncated to its first %d tokens (data.max_length)", maxLen)
		}
		pieces, _, _ := prep.SplitLong([]prep.Tokenized{t}, maxLen)
		if len(pieces) > 1 || len(t.IDs) > maxLen && maxLen > 0 {
			fate = fmt.Sprintf("split into %d pieces of up to %d tokens, each a document (data.long_text: split)", len(pieces), maxLen)
			if kept := len(pieces[len(pieces)-1].IDs) + (len(pieces)-1)*maxLen; kept < len(t.IDs) {
				fate += fmt.Sprintf("; its last %d token(s) are left out (a piece of one token teaches nothing)", len(t.IDs)-kept)
			}
		}
		fmt.Fprintf(w, "%s: %d tokens, %d learnt, %s\n", head, len(t.IDs), learnt, fate)
		for k, piece := range pieces {
			if len(pieces) > 1 {
				fmt.Fprintf(w, "── piece %d of %d (tokens %d to %d)\n", k+1, len(pieces), k*maxLen+1, k*maxLen+len(piece.IDs))
			}
			text, err := v.labelled(piece)
			if err != nil {
				return fmt.Errorf("%s: %w", ex.Source, err)
			}
			fmt.Fprint(w, endLine(text))
		}
	}
	fmt.Fprintln(w)
	return nil
}
