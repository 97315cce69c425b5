// Command tinymodels writes the generated random weights (model.safetensors)
// and the shared tokenizer (tokenizer.json, tiny-base's) of the tiny family
// models into their testdata folders, which commit only the small files
// (config, template, golden logits): run it from the repository root
// before using them outside the tests, e.g.
//
//	go run ./internal/cmd/tinymodels
//	ftune train --model testdata/phi3-tiny
//
// An optional argument names the folder that holds the <family>-tiny
// folders (default testdata). Files already in place with the right
// sha256 are kept. Tests need no such step: they call tinymodels.Dir.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/internal/tinymodels"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tinymodels:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	root := "testdata"
	switch len(args) {
	case 0:
	case 1:
		root = args[0]
	default:
		return fmt.Errorf("usage: tinymodels [folder holding the <family>-tiny folders, default testdata]; got %d arguments", len(args))
	}
	for _, name := range tinymodels.Families() {
		dir := filepath.Join(root, name+"-tiny")
		wrote, err := tinymodels.Ensure(dir, name)
		if err != nil {
			return err
		}
		state := "up to date"
		if wrote {
			state = "written"
		}
		fmt.Printf("%s: %s\n", filepath.Join(dir, tinymodels.WeightsFile), state)
	}
	return nil
}
