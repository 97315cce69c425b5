//go:build purego || !(amd64 || arm64)

package asm

// dotFor: no bf16 dot-product kernel in assembly in this build; the Go
// loops.
func dotFor(Impl) *dotGemm { return &bf16DotGo }

const (
	hasBF16Dot = false
	bf16DotISA = ""
)
