package cudabackend

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestSoftcapRefused: attention with a soft-cap is refused with
// ErrUnsupported naming the setting, before any kernel (no GPU needed);
// without one it passes.
func TestSoftcapRefused(t *testing.T) {
	err := softcapOK(tensor.AttentionParams{Scale: 1, Softcap: 50})
	if !errors.Is(err, tensor.ErrUnsupported) || !strings.Contains(err.Error(), "attn_logit_softcapping") {
		t.Fatalf("got %v, want a refusal naming attn_logit_softcapping", err)
	}
	if err := softcapOK(tensor.AttentionParams{Scale: 1}); err != nil {
		t.Fatal(err)
	}
	var b tensor.Backend = (*Backend)(nil)
	if tensor.SupportsSoftcap(b) {
		t.Fatal("the CUDA backend must not claim the final-logit soft-cap")
	}
}
