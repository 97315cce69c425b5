// Package track records training runs: what Weights & Biases gives Python
// users, as plain files in one folder per run.
//
// A run folder <output>/<run-name>/ holds
//
//	config.yaml     the resolved configuration the run used
//	metrics.jsonl   one JSON object per record: {"step", "wall_time", "metrics"}
//	                (append-only; fsync'd every 10 s, at each version and at Close;
//	                NaN/Inf are written as the strings "NaN", "+Inf", "-Inf")
//	samples.jsonl   texts logged with LogText (generation samples)
//	tensorboard/    TensorBoard event files: scalars, text samples, hparams
//	env.json        CPU model and features, OS/arch, Go and ftune versions, GPU, git commit
//	manifest.json   every checkpoint and export with the sha256 of its files, of the
//	                base model and of the data, and the metrics at that point; a
//	                checkpoint keep_last deleted stays listed, with "removed"
//	summary.json    status (finished, interrupted, failed) with its reason,
//	                duration and final metrics, written by End/Close only
//	run.lock        pid, host and start of the process that has the run open
//	report.html     written by track/report after the run closed: before/after
//	                table, charts, versions, samples, metrics, config
//
// The TensorBoard files are written by this package's own encoder of the
// TFRecord framing (length, masked CRC32C, data, masked CRC32C) and of the
// few Event/Summary protobuf fields needed; ReadEvents decodes them back
// and checks every checksum. View them with
//
//	tensorboard --logdir runs/
//
// W&B users can upload a finished run's TensorBoard files with
//
//	wandb sync runs/<run-name>/tensorboard
//
// (wandb imports tfevents files found in the folder it is given; add
// --project NAME to choose the project).
//
// Resuming: after training resumes from a checkpoint at step S, ResumeRun
// takes the folder's lock (run.lock: a second process is refused, naming
// the holder), deletes the temporaries of writes the killed process left,
// and cuts metrics.jsonl and samples.jsonl back to S (atomically); the new
// event file starts with a session START at S, which makes TensorBoard
// drop the orphaned points too. CheckInputs then says whether the base
// model or data changed since the run started.
//
// Run.Log has the shape of train.Sink's method but takes a plain
// map[string]float64 (this package does not import the trainer); a
// one-line adapter in the caller passes train.Metrics through.
package track
