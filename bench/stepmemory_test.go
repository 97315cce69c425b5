package bench

import "testing"

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
