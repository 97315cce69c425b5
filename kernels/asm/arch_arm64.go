//go:build arm64 && !purego

package asm

const (
	isAMD64 = false
	isARM64 = true
	haveAsm = true
)
