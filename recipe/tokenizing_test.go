package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/data/tokenizer"
)

// fakeProgressClock makes every reading of the progress clock step
// forward by step, until the returned function restores the real one.
func fakeProgressClock(step time.Duration) func() {
	now := time.Unix(0, 0)
	progressNow = func() time.Time {
		now = now.Add(step)
		return now
	}
	return func() { progressNow = time.Now }
}

// TestTokenizeProgressLines: a line at most every progressEvery, with
// the examples done, the share and the seconds since the start.
func TestTokenizeProgressLines(t *testing.T) {
	defer fakeProgressClock(4 * time.Second)()
	var log bytes.Buffer
	report := tokenizeProgress(&log, "chemistry") // the start: 4 s
	for _, done := range []int{30_000, 60_000, 120_000, 150_000, 200_000, 244_205} {
		report(done, 244_205) // at 8, 12, 16, 20, 24 and 28 s: 12 and 24 s in
	}
	want := "tokenizing chemistry: 120,000 of 244,205 examples (49%), 12 s\n" +
		"tokenizing chemistry: 244,205 of 244,205 examples (100%), 24 s\n"
	if log.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", log.String(), want)
	}
	for n, s := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != s {
			t.Errorf("thousands(%d) = %q, want %q", n, got, s)
		}
	}
}

// TestDataTokenizingProgress: loading data whose tokenising takes long
// (a clock that runs 11 s a reading) says how far it is on the run's
// log; a quick one (the real clock) writes no line more. The whole file
// is tokenised at once, its held-out share with it (trainSplit).
func TestDataTokenizingProgress(t *testing.T) {
	p := writeUserFile(t, t.TempDir(), "my.jsonl", "chat", 400)
	o := fileOpts(p)
	_, quick := loadTestData(t, o)
	if strings.Contains(quick, "tokenizing") {
		t.Errorf("a quick run says:\n%s", quick)
	}
	defer fakeProgressClock(11 * time.Second)()
	_, slow := loadTestData(t, o)
	if !strings.Contains(slow, "tokenizing my: ") || !strings.Contains(slow, " of 400 examples (") {
		t.Errorf("no progress lines:\n%s", slow)
	}
	var rest []string
	for _, l := range strings.Split(slow, "\n") {
		if !strings.HasPrefix(l, "tokenizing ") {
			rest = append(rest, l)
		}
	}
	if strings.Join(rest, "\n") != quick {
		t.Errorf("the rest of the log changed:\n%s\nwant:\n%s", strings.Join(rest, "\n"), quick)
	}
}

// TestSkipBadOverBudget: a record whose chat template rendering is over
// the template's budget (a 50 MB answer against the 16 MiB string limit;
// here 100 KiB against 64 KiB) fails the run naming its file and line,
// and with data.skip_bad is skipped and counted as a malformed record
// is. The token cache is not written then: it is keyed on the records as
// read, and a run reading it would leave the skipped one out unsaid.
func TestSkipBadOverBudget(t *testing.T) {
	dir := t.TempDir()
	var body strings.Builder
	for i := range 30 {
		if i == 6 {
			fmt.Fprintf(&body, `{"messages": [{"role": "user", "content": "long?"}, {"role": "assistant", "content": "%s"}]}`+"\n", strings.Repeat("x", 100<<10))
			continue
		}
		body.WriteString(userRecords["chat"](i) + "\n")
	}
	file := filepath.Join(dir, "big.jsonl")
	if err := os.WriteFile(file, []byte(body.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, err := LoadText(tinyBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := tp.tmpl.Limits()
	l.MaxValue = 64 << 10
	if tp.tmpl, err = tp.tmpl.WithLimits(l); err != nil {
		t.Fatal(err)
	}
	o := fileOpts(file)
	o.ValSplit = 0
	o.TokenCache = filepath.Join(dir, "cache")
	var log bytes.Buffer
	o.Log = &log
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "big.jsonl:7: render: ") || !errors.Is(err, chat.ErrBudget) {
		t.Fatalf("without skip_bad: %v", err)
	}
	o.SkipBad = true
	ds, err := loadData(context.Background(), o, tp, 0)
	if err != nil {
		t.Fatalf("skip_bad: %v", err)
	}
	out := log.String()
	if len(ds.train) != 29 || !strings.Contains(out, "data: subject big: 1 records skipped while tokenizing (data.skip_bad), of 30; ") ||
		!strings.Contains(out, "big.jsonl:7: render: ") || !strings.Contains(out, "token cache not written while records are skipped") {
		t.Fatalf("%d rows, log:\n%s", len(ds.train), out)
	}
	if caches, _ := filepath.Glob(filepath.Join(dir, "cache", "big", "*.tokens")); len(caches) != 0 {
		t.Errorf("caches written: %v", caches)
	}
}

// TestSkipBadErrors: what data.skip_bad skips while tokenising.
func TestSkipBadErrors(t *testing.T) {
	for err, want := range map[error]bool{
		&chat.TemplateError{Name: "t", Message: "over", Err: chat.ErrBudget}:      true,
		fmt.Errorf("x.jsonl:3: encode: %w", tokenizer.ErrLimit):                   true,
		&chat.TemplateError{Name: "t", Message: "stopped", Err: context.Canceled}: false,
		errors.New("x.jsonl:3: render: chat template t: line 2: no such filter"):  false,
	} {
		if BadRecord(err) != want {
			t.Errorf("BadRecord(%v) = %v", err, !want)
		}
	}
}
