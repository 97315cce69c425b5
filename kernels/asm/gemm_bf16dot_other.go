//go:build purego || !amd64

package asm

// dotFor: no bf16 dot-product kernel in assembly here (arm64's BFMMLA is
// not written yet); the Go loops.
func dotFor(Impl) *dotGemm { return &bf16DotGo }

const hasBF16Dot = false
