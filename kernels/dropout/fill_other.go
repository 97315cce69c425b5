//go:build purego || !amd64

package dropout

// fillWide has no vector kernel here: fill does every element in Go.
func fillWide(dst, x []float32, key, pos uint64, drop uint32, keep float32) int { return 0 }
