// Package bench holds ftune's end-to-end benchmarks (LoRA training
// throughput on the CPU beside PyTorch, GPU runs beside the anchors) and
// the scripts that run the reference side; kernel benchmarks live next to
// their kernels. See README.md for the commands and the tables.
package bench
