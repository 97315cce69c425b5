//go:build !linux

package asm

// processCPUSeconds is not measured off Linux; the CPU-time metric is then
// left out.
func processCPUSeconds() float64 { return 0 }
