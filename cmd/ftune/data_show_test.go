package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// segment is a stretch of shown text, learnt or context.
type segment struct {
	text   string
	learnt bool
}

// shownBlock is one example (or piece, or a record's part) of --show's
// output: its header line and its text, read back into segments.
type shownBlock struct {
	head     string
	segments []segment
}

var escapeRE = regexp.MustCompile(`^⟨(U\+[0-9A-F]{4,6}|0x[0-9A-F]{2})⟩`)

// readShown reads a --show text back (plain marks): ⟦ ⟧ bound learnt
// text, ↵ and a line break are a line break, a line break alone is the
// display's, ⇥ a tab, ⟨U+XXXX⟩ and ⟨0xNN⟩ a character and a byte.
// Anything else of the marks is an error: a mark shown is ftune's.
func readShown(t *testing.T, s string) []segment {
	t.Helper()
	var out []segment
	var cur strings.Builder
	learnt := false
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, segment{cur.String(), learnt})
			cur.Reset()
		}
	}
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, markLearnt):
			if learnt {
				t.Fatalf("⟦ inside learnt text: %q", s)
			}
			flush()
			learnt, s = true, s[len(markLearnt):]
		case strings.HasPrefix(s, markContext):
			if !learnt {
				t.Fatalf("⟧ outside learnt text: %q", s)
			}
			flush()
			learnt, s = false, s[len(markContext):]
		case strings.HasPrefix(s, markNewline+"\n"):
			cur.WriteByte('\n')
			s = s[len(markNewline)+1:]
		case strings.HasPrefix(s, "\n"):
			s = s[1:]
		case strings.HasPrefix(s, markTab):
			cur.WriteByte('\t')
			s = s[len(markTab):]
		case strings.HasPrefix(s, markEscape):
			m := escapeRE.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("a bare ⟨: %q", s)
			}
			if n, err := strconv.ParseUint(m[1][2:], 16, 32); err != nil {
				t.Fatal(err)
			} else if m[1][0] == 'U' {
				cur.WriteRune(rune(n))
			} else {
				cur.WriteByte(byte(n))
			}
			s = s[len(m[0]):]
		default:
			r, size := utf8.DecodeRuneInString(s)
			if strings.ContainsRune(marks, r) {
				t.Fatalf("a bare mark %q: %q", r, s)
			}
			cur.WriteString(s[:size])
			s = s[size:]
		}
	}
	if learnt {
		t.Fatalf("learnt text not closed")
	}
	flush()
	return out
}

// shownBlocks are the blocks of out whose header lines start with
// prefix (the "── example " or "── record " lines, and the lines naming
// a piece or a record's part: they start blocks of their own): the
// header, then the text up to the next header or blank line.
func shownBlocks(t *testing.T, out string, starts ...string) []shownBlock {
	t.Helper()
	var blocks []shownBlock
	var body []string
	in := false
	end := func() {
		if in {
			blocks[len(blocks)-1].segments = readShown(t, strings.Join(body, "\n")+"\n")
		}
		in, body = false, nil
	}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if slices.ContainsFunc(starts, func(p string) bool { return strings.HasPrefix(line, p) }) {
			end()
			blocks = append(blocks, shownBlock{head: line})
			in = true
			continue
		}
		if line == "" {
			end()
			continue
		}
		if in {
			body = append(body, line)
		}
	}
	end()
	return blocks
}

// runSegments are a tokenised sequence's runs of learnt and of context
// tokens, each decoded on its own: what --show must mark.
func runSegments(t *testing.T, tok *tokenizer.Tokenizer, ids []int32, learnt func(j int) bool) []segment {
	t.Helper()
	var out []segment
	for j := 0; j < len(ids); {
		k := j
		for k < len(ids) && learnt(k) == learnt(j) {
			k++
		}
		run := make([]int, k-j)
		for i := range run {
			run[i] = int(ids[j+i])
		}
		s, err := tok.Decode(run, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segment{s, learnt(j)})
		j = k
	}
	return out
}

// runTokens is what a run of tiny-base with the options sets tokenises of
// file: its Text, preprocessor and examples, as train takes them.
func runTokens(t *testing.T, file string, seqLen int, sets ...string) (recipe.Text, *prep.Preprocessor, []format.Example, *tokenizer.Tokenizer) {
	t.Helper()
	rc := config.Default()
	if err := config.Apply(rc, append([]string{"data.files=[" + file + "]", "data.max_length=" + strconv.Itoa(seqLen)}, sets...)); err != nil {
		t.Fatal(err)
	}
	o, err := recipe.FromConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := recipe.TextFor(o, cfg.PadFallback())
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Preprocessor(seqLen)
	o.SetTokenizing(p)
	ins, _, err := recipe.DataInputs(o)
	if err != nil || len(ins) != 1 {
		t.Fatalf("inputs %v: %v", ins, err)
	}
	exs, _, err := recipe.ReadDataFiles(context.Background(), ins[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(o.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	return tp, p, exs, tok
}

// TestDataValidateShowMarksTheLabels: there was no way to see what ftune
// trains on (Axolotl has preprocess --debug). data validate --show N
// prints the first N examples as the run tokenises them; what it marks
// learnt is exactly the label mask (labels != IgnoreIndex) of the run's
// tokenised example, for a chat, an alpaca, a prompt/completion and a
// text record, with the characters that do not print, and the marks
// themselves met in the data, written so that they read back.
func TestDataValidateShowMarksTheLabels(t *testing.T) {
	for _, c := range []struct {
		name, record string
		seqLen       int
		want         string // in the header
	}{
		{"chat", `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima"},{"role":"user","content":"And Chile?"},{"role":"assistant","content":"Santiago."}]}`, 256, "kept whole"},
		{"alpaca", `{"instruction":"Give the capital.","input":"Peru","output":"Lima"}`, 256, "kept whole"},
		{"completion", `{"prompt":"The capital of Peru is","completion":" Lima."}`, 256, "kept whole"},
		{"text", `{"text":"Tabs\there, a mark ⟦ or ⟧ and ↵ ⇥ ⟨U+0041⟩ in the data, a zero\u200bwidth space, a carriage return\r\nand é."}`, 256, "kept whole"},
		{"chat truncated", `{"messages":[{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima, a city on the coast of the Pacific."}]}`, 24, "truncated to its first 24 tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeData(t, t.TempDir(), "d.jsonl", c.record)
			out, err := run(t, "data", "validate", "--data", file, "--seq-len", strconv.Itoa(c.seqLen), "--show", "1", "--color", "never")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			blocks := shownBlocks(t, out, "── example ")
			if len(blocks) != 1 || !strings.Contains(blocks[0].head, c.want) {
				t.Fatalf("want one example, %q:\n%s", c.want, out)
			}
			_, p, exs, tok := runTokens(t, file, c.seqLen)
			tk, _, err := p.Tokenize(exs[0])
			if err != nil {
				t.Fatal(err)
			}
			learnt := 0
			for _, l := range tk.Labels {
				if l != prep.IgnoreIndex {
					learnt++
				}
			}
			if head := fmt.Sprintf(": %d tokens, %d learnt, ", len(tk.IDs), learnt); !strings.Contains(blocks[0].head, head) {
				t.Errorf("header %q, want %q", blocks[0].head, head)
			}
			want := runSegments(t, tok, tk.IDs, func(j int) bool { return tk.Labels[j] != prep.IgnoreIndex })
			if !slices.Equal(blocks[0].segments, want) {
				t.Errorf("shown\n%+v\nthe run's labels\n%+v\n%s", blocks[0].segments, want, out)
			}
		})
	}
}

// TestDataValidateShowsSplitText: plain text longer than the sequence
// length is shown as the pieces the run trains on (prep.SplitLong), each
// marked as its labels are.
func TestDataValidateShowsSplitText(t *testing.T) {
	file := writeData(t, t.TempDir(), "long.jsonl", `{"text":"`+strings.Repeat("Press the red key, then turn the dial to seven. ", 6)+`"}`)
	out, err := run(t, "data", "validate", "--data", file, "--seq-len", "32", "--show", "1", "--color", "never")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, p, exs, tok := runTokens(t, file, 32)
	tk, _, err := p.Tokenize(exs[0])
	if err != nil {
		t.Fatal(err)
	}
	pieces, _, _ := prep.SplitLong([]prep.Tokenized{tk}, 32)
	blocks := shownBlocks(t, out, "── example ", "── piece ")
	if len(pieces) < 2 || len(blocks) != 1+len(pieces) || !strings.Contains(blocks[0].head, fmt.Sprintf("split into %d pieces of up to 32 tokens", len(pieces))) {
		t.Fatalf("want %d pieces shown:\n%s", len(pieces), out)
	}
	for k, piece := range pieces {
		want := runSegments(t, tok, piece.IDs, func(j int) bool { return piece.Labels[j] != prep.IgnoreIndex })
		if got := blocks[1+k].segments; !slices.Equal(got, want) {
			t.Errorf("piece %d: shown %+v, want %+v", k+1, got, want)
		}
	}
}

// TestDataValidateShowColour: --color always marks learnt text with ANSI
// attributes instead of brackets, closed at each line's end.
func TestDataValidateShowColour(t *testing.T) {
	file := writeData(t, t.TempDir(), "d.jsonl", recPeru)
	out, err := run(t, "data", "validate", "--data", file, "--show", "1", "--color", "always")
	if err != nil || !strings.Contains(out, ansiLearnt+"Lima<|im_end|>"+markNewline+ansiReset+"\n") || strings.Contains(out, markLearnt+"Lima") {
		t.Errorf("--color always: %v\n%q", err, out)
	}
	if _, err := run(t, "data", "validate", "--data", file, "--show", "1", "--color", "sometimes"); err == nil || !strings.Contains(err.Error(), "auto, always or never") {
		t.Errorf("--color sometimes: %v", err)
	}
}

// TestDataValidatePreferences: data validate refused dpo and kto data,
// though its own error for a preference file says to set
// training.objective: dpo. Under dpo it counts the pairs the run trains
// on, under kto the unpaired examples and how many are desirable; --show
// prints each record's prompt as context and its completions learnt, the
// tokens the run's preference tokenising gives. A record of the wrong
// kind fails as the run fails; prepare says to run validate.
func TestDataValidatePreferences(t *testing.T) {
	dir := t.TempDir()
	pairs := writeData(t, dir, "pairs.jsonl",
		`{"prompt":[{"role":"user","content":"Capital of Peru?"}],"chosen":[{"role":"assistant","content":"Lima"}],"rejected":[{"role":"assistant","content":"No idea"}]}`,
		`{"prompt":"The capital of Chile is","chosen":" Santiago.","rejected":" Lima."}`)
	out, err := run(t, "data", "validate", "--data", pairs, "--set", "training.objective=dpo", "--show", "2", "--color", "never")
	// subject split records pairs tokens trunc drop skipped
	if row := subjectRow(out, "pairs"); err != nil || len(row) != 8 || row[2] != "2" || row[3] != "2" {
		t.Fatalf("dpo: %v, row %q\n%s", err, row, out)
	}
	tp, _, exs, tok := runTokens(t, pairs, 256, "training.objective=dpo")
	want, _, err := tp.TokenizePreferences(context.Background(), recipe.ObjectiveDPO, exs, 256, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	blocks := shownBlocks(t, out, "── record ", "prompt:", "chosen ", "rejected ")
	if len(want) != 2 || len(blocks) != 2*4 {
		t.Fatalf("want 2 records of prompt, chosen and rejected:\n%s", out)
	}
	for i, p := range want {
		for k, part := range []struct {
			ids    []int32
			learnt bool
		}{{p.Prompt, false}, {p.Chosen, true}, {p.Rejected, true}} {
			b := blocks[4*i+1+k]
			w := runSegments(t, tok, part.ids, func(int) bool { return part.learnt })
			if !slices.Equal(b.segments, w) {
				t.Errorf("record %d %s: shown %+v, want %+v", i+1, b.head, b.segments, w)
			}
		}
	}

	feedback := filepath.Join("..", "..", "testdata", "kto", "chemistry-feedback.jsonl")
	out, err = run(t, "data", "validate", "--data", feedback, "--set", "training.objective=kto", "--show", "1", "--color", "never")
	// subject split records examples tokens trunc drop skipped desirable undesirable
	row := subjectRow(out, "chemistry-feedback")
	if err != nil || len(row) != 10 || row[2] != "160" || row[3] != "160" || row[8] != "80" || !strings.Contains(out, "completion, desirable (label true)") {
		t.Fatalf("kto: %v, row %q\n%s", err, row, out)
	}
	if _, err := run(t, "data", "validate", "--data", feedback, "--set", "training.objective=dpo"); err == nil || !strings.Contains(err.Error(), "has problems") {
		t.Errorf("unpaired records under dpo: %v", err)
	}
	for _, objective := range []string{"dpo", "kto"} {
		_, err := run(t, "data", "prepare", "--data", pairs, "--out", t.TempDir(), "--set", "training.objective="+objective)
		if err == nil || !strings.Contains(err.Error(), "run ftune data validate with the same flags") {
			t.Errorf("prepare under %s: %v", objective, err)
		}
	}
}

// subjectRow is the report line of subject's training split, in fields.
func subjectRow(out, subject string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == subject && f[1] == "train" {
			return f
		}
	}
	return nil
}
