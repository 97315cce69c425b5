// Package lora trains and serves low-rank adapters on a frozen base model:
// LoRA layers that plug into nn.Linear as one fused tape node, PEFT's
// adapter_config.json and adapter_model.safetensors both ways, merging into
// the base weights, several named adapters on one base with per-row
// routing (SubjectAdapterModel), and 4-bit NF4 base weights (package nf4).
package lora
