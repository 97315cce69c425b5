// Package shell writes the commands that ftune prints as hints ("resume
// with …", "try it: …") so that they work when pasted into a POSIX shell:
// paths are quoted, and the program is named the way the user ran it.
package shell

import (
	"os"
	"path/filepath"
	"strings"
)

// Quote returns s as one shell word: unchanged when it holds nothing the
// shell would interpret, else in single quotes.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~=%^") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Program is how to run ftune again from the user's shell, from the same
// folder: "go run ./cmd/ftune" when this process is a `go run` build (its
// binary lives in a temporary go-build folder that is gone once it exits),
// the path as typed when it was run by path (bin/ftune), else its name
// (found on PATH).
func Program() string { return program(os.Args[0]) }

func program(arg0 string) string {
	switch {
	case strings.Contains(filepath.ToSlash(filepath.Dir(arg0)), "/go-build"):
		return "go run ./cmd/ftune"
	case strings.ContainsRune(arg0, '/'):
		return Quote(arg0)
	}
	return arg0
}

// Command joins a program and its arguments, quoting each argument.
func Command(prog string, args ...string) string {
	var b strings.Builder
	b.WriteString(prog)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String()
}
