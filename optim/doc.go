// Package optim holds the optimizers, learning-rate schedules and gradient
// clipping of the trainer, at the level of plain float32 slices.
//
// The trainer binds its tensors to [Param] values (a name, the parameter's
// data and its gradient, both float32) and calls Step once per optimizer step.
// Nothing here knows about tensors or devices, so the same code is the
// reference that a fused GPU AdamW kernel is tested against.
//
// Semantics follow PyTorch exactly where PyTorch defines them:
//
//   - [AdamW] is torch.optim.AdamW (amsgrad=False, maximize=False): decoupled
//     weight decay p *= 1 - lr*wd before the moment update, bias correction,
//     eps added after sqrt(v̂).
//   - [SGD] is torch.optim.SGD: L2 weight decay added to the gradient,
//     momentum with dampening and Nesterov.
//   - [ClipGradNorm] is torch.nn.utils.clip_grad_norm_ with norm_type 2.
//   - The schedules are transformers' get_*_schedule_with_warmup lambdas:
//     multipliers of the base learning rate, indexed by the number of
//     optimizer steps already taken (LambdaLR's last_epoch).
//
// All optimizer state (moments, momentum buffers) is float32, one slice per
// parameter, keyed by parameter name so a checkpoint can be restored into a
// fresh optimizer with [AdamW.LoadState] / [SGD.LoadState].
//
// [DeviceStep] is the interface of a step that runs where the parameters
// live (the CUDA backend's fused AdamW, chosen by the trainer): the same
// semantics, its state exchanged in the same [State] form, and this
// package's code the reference it is tested against. [AdamWConfig.DecayOf]
// and [AdamWConfig.LRScaleOf] give both paths each parameter's weight decay
// and learning-rate factor (LoRA+'s groups: [LoRAPlusScale]).
package optim
