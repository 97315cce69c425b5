package cudabackend

import (
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestGemmaOpsClaimed: the backend implements the optional GeGLU and
// soft-cap interfaces, so package nn no longer refuses Gemma 2 and 3 on it
// at load (no GPU needed: the check is on the type).
func TestGemmaOpsClaimed(t *testing.T) {
	var b tensor.Backend = (*Backend)(nil)
	if !tensor.SupportsSoftcap(b) {
		t.Error("the CUDA backend must implement tensor.SoftcapBackend (Gemma 2's final-logit cap)")
	}
	if !tensor.SupportsGeGLU(b) {
		t.Error("the CUDA backend must implement tensor.GeGLUBackend (Gemma's gelu_pytorch_tanh MLP)")
	}
}
