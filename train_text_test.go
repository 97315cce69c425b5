package ftune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// manual is a document of a few thousand tokens of tiny-base's tokenizer.
func manual() string {
	var b strings.Builder
	b.WriteString("# Widget manual\n\n")
	for i := range 100 {
		fmt.Fprintf(&b, "## Step %d\n\nTurn dial %d of the widget clockwise until the lamp glows; then press the reset key.\n\n", i, i)
	}
	return b.String()
}

// textRun fine-tunes tiny-base for two steps of 64-token rows on
// examples, data.long_text as given, and returns the run's log; set, when
// not nil, changes the config first.
func textRun(t *testing.T, examples []Example, longText string, set func(*RunConfig)) (*TrainResult, string) {
	t.Helper()
	t.Setenv("FTUNE_CACHE", t.TempDir())
	cfg := tinyTrainConfig(t.TempDir(), 2)
	cfg.Data.ValSplit, cfg.Data.LongText = 0, longText
	cfg.Training.Checkpointing.Monitor, cfg.Training.Checkpointing.TopK = "", 0
	if set != nil {
		set(cfg)
	}
	var log strings.Builder
	res, err := FineTune(context.Background(), examples, cfg, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Steps != 2 {
		t.Fatalf("%d steps, want 2\n%s", res.Steps, log.String())
	}
	return res, log.String()
}

var (
	splitLine   = regexp.MustCompile(`subject (\w+): 1 text examples longer than data\.max_length \(64 tokens\) are split into (\d+) pieces`)
	subjectLine = regexp.MustCompile(`subject (\w+) +(\d+) examples, +(\d+) tokens \((\d+) truncated`)
)

// TestFineTuneText: a plain-text example held in memory (Example.Text)
// is trained on as a data file's {"text": ...} record is: a document of
// a few thousand tokens is cut into pieces of data.max_length tokens,
// every one trained on, and data.long_text truncate keeps only its
// start, saying so. Example had no Text: a Go program had to write its
// documents to files to train on them.
func TestFineTuneText(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny-base")
	}
	doc := []Example{{Text: manual()}}
	_, log := textRun(t, doc, "split", nil)
	split, sub := splitLine.FindStringSubmatch(log), subjectLine.FindStringSubmatch(log)
	if split == nil || sub == nil || split[1] != "examples" || sub[1] != "examples" || sub[2] != "1" || sub[4] != "0" {
		t.Fatalf("the run does not say it splits the text, in the subject examples:\n%s", log)
	}
	pieces, _ := strconv.Atoi(split[2])
	tokens, _ := strconv.Atoi(sub[3])
	// Every piece of 64 tokens; a last piece of one token is left out.
	if tokens < 2000 || pieces < tokens/64 || pieces > (tokens+63)/64 {
		t.Fatalf("%d tokens split into %d pieces of 64: want every piece\n%s", tokens, pieces, log)
	}

	_, log = textRun(t, doc, "truncate", nil)
	sub = subjectLine.FindStringSubmatch(log)
	if strings.Contains(log, "are split into") || sub == nil || sub[4] != "1" {
		t.Fatalf("long_text truncate: want the text truncated, not split:\n%s", log)
	}
}

// TestFineTuneTextAndConversations: plain texts and conversations in one
// call, which one data file cannot hold (a file holds one shape of
// record), are written as two files read as one subject, and both train:
// the texts split as above. The config's data.files give way to the
// written files; its data.shape, which would be dropped (shape chat read
// into documents.jsonl), is refused.
func TestFineTuneTextAndConversations(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny-base")
	}
	ask := func(q, a string) Example {
		return Example{Messages: []Message{{Role: "user", Content: q}, {Role: "assistant", Content: a}}}
	}
	examples := []Example{ask("Which way does the dial turn?", "Clockwise."), {Text: manual()}, ask("What glows?", "The lamp.")}
	res, log := textRun(t, examples, "split", func(cfg *RunConfig) {
		cfg.Data.Root, cfg.Data.Files = "", []string{"qa.jsonl"}
	})
	cfg := tinyTrainConfig(t.TempDir(), 2)
	cfg.Data.Shape = "chat"
	if _, err := FineTune(context.Background(), examples, cfg, nil); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "data.shape is chat: it says how data files are read") {
		t.Fatalf("data.shape chat: %v, want refused", err)
	}
	cfg.Data.Shape, cfg.Data.Columns = "", map[string]string{"messages": "dialog"}
	if _, err := FineTune(context.Background(), examples, cfg, nil); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "data.columns maps the fields of data files") {
		t.Fatalf("data.columns: %v, want refused", err)
	}
	if m := splitLine.FindStringSubmatch(log); m == nil || m[1] != "data" {
		t.Fatalf("the run does not split the text:\n%s", log)
	}
	if m := subjectLine.FindStringSubmatch(log); m == nil || m[1] != "data" || m[2] != "3" {
		t.Fatalf("want the 3 examples in one subject:\n%s", log)
	}
	root := filepath.Join(filepath.Dir(res.RunDir), "data")
	for name, want := range map[string]int{"conversations.jsonl": 2, "documents.jsonl": 1} {
		files, _ := filepath.Glob(filepath.Join(root, "examples-*", "examples", name))
		if len(files) != 1 {
			t.Fatalf("%s under %s: %v", name, root, files)
		}
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n != want {
			t.Errorf("%s holds %d records, want %d", name, n, want)
		}
	}
}

// TestFineTuneTextRefused: an example that is not one conversation or one
// plain text is refused before any work, naming it, as invalid input.
func TestFineTuneTextRefused(t *testing.T) {
	good := Example{Text: "A document."}
	tools := json.RawMessage(`[{"type": "function", "function": {"name": "f"}}]`)
	for _, c := range []struct {
		name string
		ex   Example
		want string
	}{
		{"neither", Example{}, "has no messages and no text"},
		{"both", Example{Text: "x", Messages: []Message{{Role: "user", Content: "hi"}}}, "has both text and messages"},
		{"tools", Example{Text: "x", Tools: tools}, "has text and tools"},
		{"white space", Example{Text: " \n\t"}, "text is only white space"},
		{"not UTF-8", Example{Text: "caf\xe9"}, "text is not valid UTF-8 (at byte 3)"},
	} {
		dir := t.TempDir()
		cfg := tinyTrainConfig(dir, 2)
		_, err := FineTune(context.Background(), []Example{good, c.ex}, cfg, nil)
		if !errors.Is(err, ErrInvalidInput) || err == nil || !strings.Contains(err.Error(), "example 1: "+c.want) {
			t.Errorf("%s: %v, want ErrInvalidInput naming example 1: %s", c.name, err, c.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s: %s written to before the refusal", c.name, dir)
		}
	}
}
