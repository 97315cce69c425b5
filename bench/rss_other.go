//go:build !unix

package bench

// PeakRSSMiB is not measured on this system.
func PeakRSSMiB() float64 { return 0 }

// CPUSeconds is not measured on this system.
func CPUSeconds() float64 { return 0 }
