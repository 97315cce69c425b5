// Package recipe wires the data pipeline, a model, LoRA adapters and the
// trainer into complete fine-tuning runs: the three trainers users ask for
// (SubjectSpecific, MultiTask with a shared adapter or one adapter per
// subject, and the memory-lean preset: NF4 base and gradient
// checkpointing) behind one Run, with evaluation before and after, a run
// folder, checkpoints and an exported PEFT adapter. `ftune train` is a thin
// shell around it; other Go tools can embed it the same way. Options.Comm
// runs it as one worker of a data-parallel job (distributed.go).
package recipe
