package optim

import (
	"fmt"
	"math"
)

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with norm_type 2: it
// computes the L2 norm of all gradients together (as if concatenated into
// one vector) and, when it exceeds maxNorm, scales every gradient in place by
// maxNorm/(total+1e-6). It returns the total norm before clipping.
//
// The norm is accumulated in float64 (torch accumulates each tensor's norm in
// float32): the returned value can differ from torch's in the last float32
// digit, the clipping decision and factor only at that level.
//
// A non-finite total norm is returned as is and, like torch with
// error_if_nonfinite=False, the gradients are then scaled by a NaN factor;
// callers that want to skip such steps check the returned norm first.
func ClipGradNorm(params []Param, maxNorm float64) (float64, error) {
	if !(maxNorm > 0) {
		return 0, fmt.Errorf("clip grad norm: max norm %v must be > 0", maxNorm)
	}
	total := GradNorm(params)
	coef := maxNorm / (total + 1e-6)
	if math.IsNaN(coef) || coef < 1 {
		c := float32(coef)
		for _, p := range params {
			for i := range p.Grad {
				p.Grad[i] *= c
			}
		}
	}
	return total, nil
}

// GradNorm returns the global L2 norm of all gradients (nil ones skipped).
func GradNorm(params []Param) float64 {
	var sum float64
	for _, p := range params {
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	return math.Sqrt(sum)
}
