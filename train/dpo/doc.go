// Package dpo trains an adapter on preferences: Direct Preference
// Optimization (Rafailov et al., 2023) with the sigmoid loss, as TRL's
// DPOTrainer computes it by default, the frozen base (the adapter turned
// off) as the reference model, as PEFT's models do with TRL when no
// reference model is given.
//
// A batch holds B pairs as 2B rows, the chosen completions first and the
// rejected ones after them (TRL's concatenated forward), each the prompt
// followed by its completion, labelled on the completion only. A
// sequence's log-likelihood is the sum of its completion tokens' log
// probabilities. With z = (π_c − π_r) − (ref_c − ref_r) for policy and
// reference log-likelihoods of the chosen and rejected completions, the
// loss is the mean over pairs of −log σ(β·z); the rewards TRL logs are
// β(π − ref) per completion.
//
// The policy's forward computes each token's loss through the fused LM
// head (nn.ForwardOptions.RowLosses; no full logits), the pairwise loss is
// taken on the host from the 2B log-likelihoods (autograd.HostLoss), and
// its gradient flows back to the tokens as one weight per sequence, so the
// backward is the supervised one with per-row weights. The reference
// forward runs without a tape before it, every step (TRL's default; its
// precompute_ref_log_probs is not offered).
//
// KTO (kto.go, unpaired.go) trains on unpaired feedback, TRL's KTOTrainer:
// a batch of examples, each a prompt with one completion labelled
// desirable or not, and as many mismatched rows (each prompt with another
// example's completion) whose log-ratios estimate the KL term; the same
// Objective, reference and host loss, its loss KTOLoss.
package dpo
