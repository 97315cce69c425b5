// Package bench holds ftune's end-to-end benchmarks (LoRA training
// throughput on the CPU beside PyTorch, GPU runs beside the anchors) and
// the scripts that run the reference side; kernel benchmarks live next to
// their kernels. See README.md for the commands and the tables.
//
// The CPU LoRA comparison: RunLoRA times ftune's training step on one of
// Shapes (cmd/lorabench prints it as JSON), torch_cpu_lora.py the same step
// in PyTorch, and cpu_lora.sh runs both sides interleaved and prints the
// table (cpu_lora_table.py).
package bench
