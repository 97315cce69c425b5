package lora

import (
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TestDropoutStreamSkipAndState: the mask a data-parallel worker draws for
// rows [r0, r1) of a micro-batch, after SkipDropout past rows [0, r0), is
// those rows of the mask one process draws for the whole micro-batch; a
// saved state resumes the stream exactly; a state from the earlier PCG
// stream, or one that is not ftune's, is refused with the reason.
func TestDropoutStreamSkipAndState(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConfig(4, 8, "q_proj")
	c.LoraDropout = 0.3
	layer := func() *Layer {
		a, err := New(m, c, "d", 9)
		if err != nil {
			t.Fatal(err)
		}
		return a.Layers[a.Modules()[0]]
	}
	const B, T, in = 4, 5, 12 // T·in a multiple of 4: rows are whole draws
	whole := layer().dropoutMask(tensor.Zeros(m.Backend, tensor.F32, B, T, in)).F32()
	l := layer()
	l.SkipDropout(1 * T * in / 4)
	rows := l.dropoutMask(tensor.Zeros(m.Backend, tensor.F32, 2, T, in)).F32()
	if !slices.Equal(rows, whole[1*T*in:3*T*in]) {
		t.Fatal("rows 1-2 drawn after skipping row 0 differ from one process's rows 1-2")
	}

	state, err := l.RNGState()
	if err != nil {
		t.Fatal(err)
	}
	next := l.dropoutMask(tensor.Zeros(m.Backend, tensor.F32, T, in)).F32()
	r := layer()
	if err := r.SetRNGState(state); err != nil {
		t.Fatal(err)
	}
	if again := r.dropoutMask(tensor.Zeros(m.Backend, tensor.F32, T, in)).F32(); !slices.Equal(again, next) {
		t.Fatal("a restored stream draws a different mask")
	}

	pcg := append([]byte("pcg:"), make([]byte, 16)...)
	if err := r.SetRNGState(pcg); err == nil || !strings.Contains(err.Error(), "PCG state") {
		t.Errorf("an earlier version's PCG state: %v, want a refusal that names it", err)
	}
	if err := r.SetRNGState([]byte("junk")); err == nil || !strings.Contains(err.Error(), "not one ftune wrote") {
		t.Errorf("a foreign state: %v, want a refusal", err)
	}
}
