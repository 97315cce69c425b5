// Package tinymodels generates the random weights of the tiny family
// models under testdata/<family>-tiny (qwen3, gemma2, gemma3, phi3,
// phi4mini, smollm3, granite). Their model.safetensors are not committed: they follow from
// a seed, and this package is the one place that draws them (shapes.go
// spells out each folder's tensors, families.go the seeds, the value
// distributions and the sha256 of the bytes, which are the ones the
// llama.cpp golden logits in those folders were computed on). Their
// tokenizer.json, tiny-base's in every folder, is not committed either: it
// is copied from assets/models/tiny-base with the weights.
//
// Tests get a complete folder with Dir; `go run ./internal/cmd/tinymodels`
// writes the weights and tokenizer for the CLI (ftune train --model testdata/phi3-tiny).
// Both write into the testdata folder itself (gitignored), atomically, so
// test packages running in parallel processes never see half a file.
package tinymodels
