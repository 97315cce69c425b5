package shell

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"runs/20261126-114016": "runs/20261126-114016",
		"my runs/a":            "'my runs/a'",
		"":                     "''",
		"it's":                 `'it'\''s'`,
		"a$b":                  "'a$b'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestQuoteRoundTrip: what a POSIX shell reads back from a quoted word is
// the original string.
func TestQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh: %v", err)
	}
	for _, in := range []string{"plain", "with space", "it's", `back\slash`, "$HOME", "a\"b", "tab\there", "*?[x]", "~user"} {
		out, err := exec.Command(sh, "-c", "printf %s "+Quote(in)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != in {
			t.Errorf("sh read %q back as %q (quoted %s)", in, out, Quote(in))
		}
	}
}

func TestProgram(t *testing.T) {
	for arg0, want := range map[string]string{
		"/tmp/go-build1234/b001/exe/ftune": "go run ./cmd/ftune",
		"/usr/local/bin/ftune":             "/usr/local/bin/ftune",
		"ftune":                            "ftune",
		"bin/ftune":                        "bin/ftune",
		"my bin/ftune":                     "'my bin/ftune'",
	} {
		if got := program(arg0); got != want {
			t.Errorf("program(%q) = %q, want %q", arg0, got, want)
		}
	}
	if got := Command("ftune", "train", "--resume", "my runs/x"); got != "ftune train --resume 'my runs/x'" {
		t.Errorf("Command = %s", got)
	}
}
