package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune"
)

// runGenerate runs ftune generate with stdin and separate stdout and
// stderr.
func runGenerate(t *testing.T, ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, log bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&log)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"generate"}, args...))
	err = root.ExecuteContext(ctx)
	return out.String(), log.String(), err
}

// replies is what a chat of these messages on tiny-base answers, greedy,
// one reply a line.
func replies(t *testing.T, opt ftune.GenerateOptions, msgs ...string) string {
	t.Helper()
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.NewConversation("")
	var sb strings.Builder
	for _, msg := range msgs {
		r, err := c.Send(context.Background(), msg, opt)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(r.Text + "\n")
	}
	return sb.String()
}

// TestGenerateChatFromAPipe: piped into, the chat answered the lines up to
// the first empty one and ended with exit 0, and put its "> " prompts on
// stdout among the replies; a line that was not UTF-8 ended the chat with
// a byte offset into the rendered template. Now every line is answered
// until the input ends, stdout holds the replies alone, and a bad line is
// reported by its line and byte and skipped (and, since, failed at the end).
func TestGenerateChatFromAPipe(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	opt := ftune.GenerateOptions{MaxNewTokens: 4}
	want := replies(t, opt, "Symbol of iron?", "Capital of Peru?")
	out, log, err := runGenerate(t, context.Background(), "Symbol of iron?\n\n   \nCapital of Peru?\n", "--max-tokens", "4")
	if err != nil {
		t.Fatalf("chat: %v\n%s", err, log)
	}
	if out != want {
		t.Errorf("stdout %q, want the two replies alone, %q\nstderr:\n%s", out, want, log)
	}
	if n := strings.Count(log, "> "); n != 5 {
		t.Errorf("stderr shows %d prompts, want 5 (four lines, then the end):\n%s", n, log)
	}

	// The failed line has an empty reply line, and the chat fails at its
	// end (TestChatBatchFailedLines).
	r1, r3 := replies(t, opt, "ab"), replies(t, opt, "ab", "Capital of Peru?")[len(replies(t, opt, "ab")):]
	want = r1 + "\n" + r3
	out, log, err = runGenerate(t, context.Background(), "ab\nxy\xffz\nCapital of Peru?\n", "--max-tokens", "4")
	if err == nil || !strings.Contains(err.Error(), "1 of 3 input lines were not answered (line 2)") {
		t.Errorf("chat with a line not UTF-8: %v, want 1 of 3 lines not answered\n%s", err, log)
	}
	if !strings.Contains(log, "input line 2, byte 3: not valid UTF-8") {
		t.Errorf("stderr does not name line 2, byte 3:\n%s", log)
	}
	if out != want {
		t.Errorf("stdout %q, want the replies to lines 1 and 3 around an empty line, %q", out, want)
	}
}

// TestGeneratePromptFromStdin: --prompt - answered the literal "-"; it
// reads the prompt from stdin, whole, without its final newline.
func TestGeneratePromptFromStdin(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	const q = "Symbol of iron?\nAnd of gold?"
	want, _, err := runGenerate(t, context.Background(), "", "--prompt", q, "--max-tokens", "6")
	if err != nil {
		t.Fatal(err)
	}
	out, log, err := runGenerate(t, context.Background(), q+"\n", "--prompt", "-", "--max-tokens", "6")
	if err != nil || out != want {
		t.Errorf("--prompt -: %q, %v, want %q as for --prompt %q\n%s", out, err, want, q, log)
	}
	if dash, _, _ := runGenerate(t, context.Background(), "", "--prompt", "-", "--max-tokens", "6"); dash == want {
		t.Errorf("--prompt - with an empty stdin answered: %q", dash)
	}
	for stdin, msg := range map[string]string{"": "stdin is empty", "\n\n": "stdin is empty", "a\xff": "(stdin): byte 2 is not valid UTF-8"} {
		_, _, err := runGenerate(t, context.Background(), stdin, "--prompt", "-")
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), msg) {
			t.Errorf("--prompt - with stdin %q: %v, want a usage error saying %q", stdin, err, msg)
		}
	}
}

// TestGenerateChecksAfterLoading: a setting the loaded model cannot honour
// is refused before the chat reads a line (--no-thinking on a template
// that does not read enable_thinking was refused at the first message;
// --max-tokens as large as the context made every turn drop the whole
// history, blaming the context).
func TestGenerateChecksAfterLoading(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-thinking"}, "--no-thinking: chat: thinking false: the chat template does not read enable_thinking"},
		{[]string{"--thinking", "--prompt", "x"}, "--thinking: chat: thinking true"},
		{[]string{"--max-tokens", "1024"}, "--max-tokens 1024: the model's context holds 1024 tokens"},
		{[]string{"--max-tokens", "5000"}, "want at most 1023"},
	} {
		out, log, err := runGenerate(t, context.Background(), "hello\n", c.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a usage error saying %q", c.args, err, c.want)
		}
		if out != "" || strings.Contains(log, "chat with") {
			t.Errorf("%q: the chat began: stdout %q, stderr %q", c.args, out, log)
		}
	}
	// A prompt refused after loading leaves stdout empty (it held a "\n").
	if out, _, err := runGenerate(t, context.Background(), "", "--prompt", strings.Repeat("iron ", 3000)); !errors.Is(err, ftune.ErrContextFull) || out != "" {
		t.Errorf("long prompt: stdout %q, %v, want nothing and ErrContextFull", out, err)
	}
	// One reply may run to the end of the context: it is said when it does.
	if _, log, err := runGenerate(t, context.Background(), "", "--prompt", "x", "--max-tokens", "1024", "--raw"); err != nil {
		t.Errorf("--prompt with --max-tokens 1024: %v\n%s", err, log)
	}
	// Sampling from the default seed says so.
	if _, log, err := runGenerate(t, context.Background(), "", "--prompt", "x", "--max-tokens", "2", "--temperature", "0.8"); err != nil || !strings.Contains(log, "seed 0, the default") {
		t.Errorf("sampling without --seed: %v, stderr %q", err, log)
	}
	if _, log, err := runGenerate(t, context.Background(), "", "--prompt", "x", "--max-tokens", "2", "--temperature", "0.8", "--seed", "3"); err != nil || strings.Contains(log, "seed") {
		t.Errorf("sampling with --seed: %v, stderr %q", err, log)
	}
}

// TestChatCtrlCWhileWaiting: Ctrl-C at the chat's prompt did nothing until
// another line came. The chat now waits for a line and for ctx at once,
// and ends with an error that exits 130, as a one-shot reply stopped by
// Ctrl-C does.
func TestChatCtrlCWhileWaiting(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, feed := io.Pipe() // a line that never comes
	defer feed.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	var out, log bytes.Buffer
	go func() {
		ended <- chatLoop(ctx, m, chatIO{in: in, interactive: true, out: &out, log: &log}, "", ftune.GenerateOptions{MaxNewTokens: 2})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) || exitCode(ctx, err) != exitInterrupted {
			t.Errorf("chat ended with %v (exit %d), want context.Canceled (exit %d)", err, exitCode(ctx, err), exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C at the prompt did not end the chat")
	}
}

// TestChatEmptyLineAtATerminal: typed at a terminal, an empty line still
// ends the chat (the lines after it are not read); piped, it is skipped.
// The note on dropped turns names --max-tokens, whose room it keeps.
func TestChatEmptyLineAtATerminal(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	m, err := ftune.Load(ftune.TinyBase, ftune.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opt := ftune.GenerateOptions{MaxNewTokens: 2}
	for _, interactive := range []bool{true, false} {
		var out, log bytes.Buffer
		if err := chatLoop(context.Background(), m, chatIO{in: strings.NewReader("hi\n\nhello\n"), interactive: interactive, out: &out, log: &log}, "", opt); err != nil {
			t.Fatal(err)
		}
		want := 2
		if interactive {
			want = 1
		}
		if n := strings.Count(out.String(), "\n"); n != want {
			t.Errorf("interactive %v: %d replies, want %d: %q", interactive, n, want, out.String())
		}
	}
	m.Net.Config.MaxPositions = 120
	var out, log bytes.Buffer
	opt.MaxNewTokens = 80
	if err := chatLoop(context.Background(), m, chatIO{in: strings.NewReader("Which element has atomic number 26?\nAnd 29?\n"), out: &out, log: &log}, "", opt); err != nil {
		t.Fatal(err)
	}
	if s := log.String(); !strings.Contains(s, "dropped the 2 oldest messages so that the conversation leaves room for --max-tokens 80 in the model's context (120 tokens)") {
		t.Errorf("no note on the dropped turns naming --max-tokens:\n%s", s)
	}
}
