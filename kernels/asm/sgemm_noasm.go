//go:build purego || !(amd64 || arm64)

package asm

func gemmFor(Impl) *gemmImpl { return &goGemm }
