// Package train is ftune's Lightning-like trainer: Fit / Validate over a
// model and its trainable parameters, with gradient accumulation,
// global-norm clipping, learning-rate schedules, validation, callbacks
// (checkpointing, early stopping, learning-rate and throughput monitors, a
// loss-spike/NaN guard, a timer) and checkpoints that resume bit-exactly.
// Optimizers and schedules live in optim. With Trainer.Comm naming several
// workers, Fit trains data-parallel and takes the same steps as one
// process (distributed.go).
package train
