package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ftune/ftune"
)

// TestChatBatchFailedLines: piped into, a chat that could not send a line
// (not UTF-8, too long for the context, an unknown command) said so on
// stderr, printed no reply for it, and exited 0, so that a script saw one
// reply fewer than it sent lines and no failure. Now each failed line has
// an empty line on stdout in place of its reply, the chat goes on to the
// end of the input, and then fails (exit 1) naming how many lines, and
// which, were not answered. At a terminal a failed line is still only
// said, and the chat goes on.
func TestChatBatchFailedLines(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	opt := ftune.GenerateOptions{MaxNewTokens: 4}
	want := replies(t, opt, "Name the element with symbol Fe.")
	long := strings.Repeat("iron ", 3000)
	in := "abc\xffdef\nName the element with symbol Fe.\n" + long + "\n/frobnicate\n"

	out, log, err := runGenerate(t, context.Background(), in, "--max-tokens", "4")
	if err == nil {
		t.Fatalf("piped chat with 3 failed lines of 4 succeeded\nstdout %q\nstderr:\n%s", out, log)
	}
	if code := exitCode(context.Background(), err); code != 1 {
		t.Errorf("exit %d, want 1: %v", code, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "3 of 4 input lines were not answered (lines 1, 3, 4)") {
		t.Errorf("error %q does not say 3 of 4 lines, 1, 3 and 4, were not answered", msg)
	}
	if wantOut := "\n" + want + "\n\n"; out != wantOut {
		t.Errorf("stdout %q, want an empty line for each failed line in its place, %q", out, wantOut)
	}
	for _, s := range []string{"input line 1, byte 4: not valid UTF-8", "input line 3:", "input line 4: unknown command /frobnicate"} {
		if !strings.Contains(log, s) {
			t.Errorf("stderr does not say %q:\n%s", s, log)
		}
	}

	// At a terminal: said, and the chat goes on, to a nil end.
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tout, tlog bytes.Buffer
	if err := chatLoop(context.Background(), m, chatIO{in: strings.NewReader(in), interactive: true, out: &tout, log: &tlog}, "", opt); err != nil {
		t.Errorf("interactive chat with failed lines: %v, want nil", err)
	}
	if tout.String() != want {
		t.Errorf("interactive stdout %q, want the one reply, %q", tout.String(), want)
	}
}
