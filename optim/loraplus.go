package optim

import "strings"

// LoRAPlusScale is LoRA+ (Hayou et al. 2024, arXiv:2402.12354) as PEFT's
// create_loraplus_optimizer groups the parameters, given as a learning-rate
// scale (AdamWConfig.LRScale): ratio for what it puts in its B groups,
// every parameter whose name holds "lora_B" and every one-dimensional
// parameter (DoRA's lora_magnitude_vector, a bias of a modules_to_save
// copy), and 1 for the rest (lora_A, the copies' weight matrices), which
// train at lr. ndims gives each trainable parameter's number of
// dimensions by name. Weight decay is the caller's NoDecay either way:
// PEFT decays the same parameters (none of a bias or a norm). Ratio 0
// (LoRA+ off) gives nil.
func LoRAPlusScale(ratio float64, ndims map[string]int) func(name string) float64 {
	if ratio == 0 {
		return nil
	}
	b := map[string]bool{}
	for name, nd := range ndims {
		b[name] = LoRAPlusB(name, nd)
	}
	return func(name string) float64 {
		if b[name] {
			return ratio
		}
		return 1
	}
}

// LoRAPlusB says whether PEFT's LoRA+ trains a parameter at lr × ratio:
// a lora_B matrix or any one-dimensional parameter (its rule, which puts
// DoRA's magnitudes and biases beside lora_B).
func LoRAPlusB(name string, ndim int) bool {
	return strings.Contains(name, "lora_B") || ndim == 1
}
