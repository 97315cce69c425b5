//go:build purego || !(amd64 || arm64)

package asm

const (
	isAMD64 = false
	isARM64 = false
	haveAsm = false
)
