//go:build purego || !(amd64 || arm64)

package asm

// vecArch is empty: this build has only the Go reference kernels.
var vecArch = map[Impl]*vecImpl{}
