package cuda

import "math"

// IgnoreIndex is the target id whose rows the cross-entropy skips (PyTorch's).
const IgnoreIndex = -100

// CrossEntropyInit resets the running softmax statistics of N rows before
// the first vocabulary chunk: rowMax = -inf, rowSum = 0.
func (d *Device) CrossEntropyInit(s Stream, rowMax, rowSum Ptr, N int) error {
	if N <= 0 {
		return nil
	}
	if err := d.Memset32Async(s, rowMax, math.Float32bits(float32(math.Inf(-1))), N); err != nil {
		return err
	}
	return d.Memset32Async(s, rowSum, 0, N)
}

func checkChunk(op string, N, ld, v0, Vc int) error {
	if N < 0 || Vc <= 0 || v0 < 0 || ld < Vc {
		return badArg("%s: N=%d ld=%d v0=%d Vc=%d", op, N, ld, v0, Vc)
	}
	return nil
}

// CrossEntropyFwd folds the logits chunk x [N,Vc] (row stride ld), which
// holds vocabulary columns [v0, v0+Vc), into the per-row running max and sum
// of exponentials, and records the target's logit (tgtLogit [N]) when the
// target lies in the chunk. targets [N] int32.
func (d *Device) CrossEntropyFwd(s Stream, t DType, x Ptr, ld, v0, Vc, N int, targets, rowMax, rowSum, tgtLogit Ptr) error {
	if err := checkChunk("CrossEntropyFwd", N, ld, v0, Vc); err != nil {
		return err
	}
	if N == 0 {
		return nil
	}
	f, err := d.Kernel(kernelName("crossentropy", "fwd", t))
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{N, 1, 1}, Dim3{256, 1, 1}, 0,
		new(Args).Ptr(x).Int(ld).Int(v0).Int(Vc).Ptr(targets).Ptr(rowMax).Ptr(rowSum).Ptr(tgtLogit))
}

// CrossEntropyLoss finishes the forward after the last chunk: lse [N] and
// losses [N] (0 for ignored rows) are set, and when lossSum != 0,
// *lossSum += sum(losses) * invCount (so invCount = 1/#counted gives the mean).
func (d *Device) CrossEntropyLoss(s Stream, N, V int, targets, rowMax, rowSum, tgtLogit, lse, losses, lossSum Ptr, invCount float32) error {
	if N < 0 || V <= 0 {
		return badArg("CrossEntropyLoss: N=%d V=%d", N, V)
	}
	if N == 0 {
		return nil
	}
	f, err := d.Kernel("crossentropy_loss_fwd_f32")
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{(N + 255) / 256, 1, 1}, Dim3{256, 1, 1}, 0,
		new(Args).Ptr(targets).Ptr(rowMax).Ptr(rowSum).Ptr(tgtLogit).Ptr(lse).Ptr(losses).Ptr(lossSum).Int(N).Int(V).F32(invCount))
}

// CrossEntropyBwd writes the logit gradient of a chunk:
// dx = (softmax(x) - onehot(target)) * invCount, zero on ignored rows. dx may
// alias x (the gradient then replaces the logits in place).
func (d *Device) CrossEntropyBwd(s Stream, t DType, dx, x Ptr, ld, v0, Vc, N, V int, targets, lse Ptr, invCount float32) error {
	if err := checkChunk("CrossEntropyBwd", N, ld, v0, Vc); err != nil {
		return err
	}
	if N == 0 {
		return nil
	}
	f, err := d.Kernel(kernelName("crossentropy", "bwd", t))
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{N, 1, 1}, Dim3{256, 1, 1}, 0,
		new(Args).Ptr(dx).Ptr(x).Int(ld).Int(v0).Int(Vc).Int(V).Ptr(targets).Ptr(lse).F32(invCount))
}
