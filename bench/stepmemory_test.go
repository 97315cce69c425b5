package bench

import (
	"bytes"
	"runtime"
	"testing"
)

// MeasureStepMemory on tiny-base: the step's tensors at the backward are
// at least the activations the model must keep (per block: the input, the
// residual sum, q, the attention output, k, v, gate and up), and the peak
// is above them.
func TestMeasureStepMemory(t *testing.T) {
	const B, T = 2, 32
	m, err := MeasureStepMemory("tiny-base", "../assets/models/tiny-base", B, T, MemorySavers{})
	if err != nil {
		t.Fatal(err)
	}
	const H, kv, I, L = 256, 128, 704, 6
	floor := float64(L*B*T*(4*H+2*kv+2*I)*4) / (1 << 20)
	if m.AtBackward < floor || m.Peak < m.AtBackward || m.Weights <= 0 || m.Loss <= 0 {
		t.Errorf("%+v: want live at the backward >= %.3f MiB and the peak above it", m, floor)
	}
}

// The random weights of the benchmark models do not depend on how many
// CPUs drew them (each block of a tensor has its own stream), and differ
// between blocks and between tensors.
func TestRandomWeightsIndependentOfCPUs(t *testing.T) {
	n := 2*randomBlock + randomBlock/2
	draw := func(procs int, tensor uint64) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		b := make([]byte, 2*n)
		randomBF16(b, n, tensor)
		return b
	}
	one, four := draw(1, 3), draw(4, 3)
	if !bytes.Equal(one, four) {
		t.Fatal("the weights depend on GOMAXPROCS")
	}
	if bytes.Equal(one[:2*randomBlock], one[2*randomBlock:4*randomBlock]) || bytes.Equal(one, draw(4, 4)) {
		t.Error("two blocks, or two tensors, drew the same weights")
	}
}
