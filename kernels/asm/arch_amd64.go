//go:build amd64 && !purego

package asm

const (
	isAMD64 = true
	isARM64 = false
	haveAsm = true
)
