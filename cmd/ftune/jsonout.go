package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// This file is what the read-only commands (runs list, runs show, eval,
// env) share for --json: scripts and other programs read one JSON
// document from stdout instead of scraping the text, while notes,
// warnings and progress stay on stderr, where they do not break the
// document. Field names are snake_case and stable; a value a command
// does not know is null, not left out, so a reader need not tell a
// missing field from a renamed one.

// jsonFlagUsage is --json's help, the same on every command that has it.
const jsonFlagUsage = "print one JSON document on stdout (notes and warnings go to stderr)"

// addJSONFlag gives cmd --json, set in *on.
func addJSONFlag(cmd *cobra.Command, on *bool) {
	cmd.Flags().BoolVar(on, "json", false, jsonFlagUsage)
}

// writeJSON writes v to w as one indented JSON document and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// jsonTime is t for a JSON field: nil (null) when t is unknown (zero).
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
