package dpo

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Stats are the sums a batch adds to what a step or an evaluation reports
// (TRL's names): the loss, the rewards β(π − ref) of the chosen and the
// rejected completions (KTO's desirable and undesirable ones), how many
// pairs the policy ranks right (reward chosen > reward rejected), the
// policy's log-likelihoods, and KTO's KL estimates.
type Stats struct {
	// Pairs are DPO's pairs and Examples KTO's unpaired examples: the
	// items the loss is a mean over (one of them is 0).
	Pairs, Examples int
	// Chosen and Rejected count the completions the chosen and the
	// rejected sums hold: each of DPO's pairs has one of each, a KTO
	// example one of either.
	Chosen, Rejected             int
	Loss                         float64
	RewardChosen, RewardRejected float64
	Correct                      float64
	LogPChosen, LogPRejected     float64
	// KL sums the KL estimates of KLBatches batches (KTO's loss type kto).
	KL        float64
	KLBatches int
}

// Add accumulates another batch's sums.
func (s *Stats) Add(o Stats) {
	s.Pairs += o.Pairs
	s.Examples += o.Examples
	s.Chosen += o.Chosen
	s.Rejected += o.Rejected
	s.Loss += o.Loss
	s.RewardChosen += o.RewardChosen
	s.RewardRejected += o.RewardRejected
	s.Correct += o.Correct
	s.LogPChosen += o.LogPChosen
	s.LogPRejected += o.LogPRejected
	s.KL += o.KL
	s.KLBatches += o.KLBatches
}

// statsFloats is how many float64 put writes: every field of Stats.
const statsFloats = 12

// put writes s's fields to buf (their counts exact: below 2^53), for an
// all-reduce; statsFrom reads them back.
func (s Stats) put(buf []float64) {
	copy(buf, []float64{float64(s.Pairs), float64(s.Examples), float64(s.Chosen), float64(s.Rejected),
		s.Loss, s.RewardChosen, s.RewardRejected, s.Correct, s.LogPChosen, s.LogPRejected, s.KL, float64(s.KLBatches)})
}

func statsFrom(buf []float64) Stats {
	return Stats{Pairs: int(buf[0]), Examples: int(buf[1]), Chosen: int(buf[2]), Rejected: int(buf[3]),
		Loss: buf[4], RewardChosen: buf[5], RewardRejected: buf[6], Correct: buf[7], LogPChosen: buf[8], LogPRejected: buf[9], KL: buf[10], KLBatches: int(buf[11])}
}

// Metrics are the means under prefix ("train/", "val/"), named as TRL
// logs them: rewards/chosen and logps/chosen (over the chosen, or
// desirable, completions), rewards/rejected and logps/rejected (over the
// rejected, or undesirable, ones), rewards/margins (the two rewards'
// difference, when there are both), rewards/accuracies (DPO's pairs
// ranked right), kl (KTO's mean KL estimate over the batches), and with
// withLoss the loss as loss (a training step's loss is the trainer's own).
// TRL averages each batch's means instead, which weighs a batch's
// examples by how few of their kind it holds; these are means over every
// completion (the same for DPO's batches, each holding as many of each).
func (s Stats) Metrics(prefix string, withLoss bool) map[string]float64 {
	items := s.Pairs + s.Examples
	if items == 0 {
		return nil
	}
	m := map[string]float64{}
	if s.Chosen > 0 {
		m[prefix+"rewards/chosen"] = s.RewardChosen / float64(s.Chosen)
		m[prefix+"logps/chosen"] = s.LogPChosen / float64(s.Chosen)
	}
	if s.Rejected > 0 {
		m[prefix+"rewards/rejected"] = s.RewardRejected / float64(s.Rejected)
		m[prefix+"logps/rejected"] = s.LogPRejected / float64(s.Rejected)
	}
	if s.Chosen > 0 && s.Rejected > 0 {
		m[prefix+"rewards/margins"] = s.RewardChosen/float64(s.Chosen) - s.RewardRejected/float64(s.Rejected)
	}
	if s.Pairs > 0 {
		m[prefix+"rewards/accuracies"] = s.Correct / float64(s.Pairs)
	}
	if s.KLBatches > 0 {
		m[prefix+"kl"] = s.KL / float64(s.KLBatches)
	}
	if withLoss {
		m[prefix+"loss"] = s.Loss / float64(items)
	}
	return m
}

// The loss types of TRL's DPOConfig.loss_type that ftune computes, each a
// function of a pair's log-ratios d_c = π_c − ref_c and d_r = π_r − ref_r
// (z = β·(d_c − d_r)), averaged over a batch's pairs:
//   - sigmoid: −log σ(z), DPO's;
//   - hinge: max(0, 1 − z), RSO's;
//   - ipo: ((d_c/n_c − d_r/n_r) − 1/(2β))², IPO's with TRL's per-token
//     normalisation (n: a completion's tokens), β as IPO's τ;
//   - robust: (−(1−ε)·log σ(z) + ε·log σ(−z)) / (1−2ε), the robust DPO of
//     noisy labels (ε: LabelSmoothing, in [0, 0.5));
//   - sigmoid_norm: sigmoid of β·(d_c/n_c − d_r/n_r);
//   - sft: the chosen completions' next-token loss (its mean over their
//     tokens; with sigmoid it is RPO, TRL's replacement of rpo_alpha).
//
// And two that need no reference model, on the completions' mean token
// log-likelihoods a = π/n:
//   - orpo: ORPO's, TRL's ORPOTrainer: the sft loss − β·log σ(L) with the
//     log odds ratio L = (a_c − a_r) − (log(1 − e^a_c) − log(1 − e^a_r));
//   - simpo: SimPO's, TRL's CPOTrainer loss_type simpo (cpo_alpha 0):
//     −(1−ε)·log σ(y) − ε·log σ(−y), y = β·(a_c − a_r) − γ (SimPOGamma).
const (
	LossSigmoid     = "sigmoid"
	LossHinge       = "hinge"
	LossIPO         = "ipo"
	LossRobust      = "robust"
	LossSigmoidNorm = "sigmoid_norm"
	LossSFT         = "sft"
	LossORPO        = "orpo"
	LossSimPO       = "simpo"
)

// LossTypes are the loss types Spec takes.
var LossTypes = []string{LossSigmoid, LossHinge, LossIPO, LossRobust, LossSigmoidNorm, LossSFT, LossORPO, LossSimPO}

// DefaultSimPOGamma is TRL's CPOConfig.simpo_gamma.
const DefaultSimPOGamma = 0.5

// Spec is the preference loss: β, TRL's loss_type list with its
// loss_weights, label_smoothing (robust's and simpo's ε) and simpo's γ.
type Spec struct {
	Beta           float64
	Types          []string  // nil: sigmoid
	Weights        []float64 // nil: 1 for each type
	LabelSmoothing float64
	SimPOGamma     float64 // simpo's target margin γ; 0 with simpo: DefaultSimPOGamma
}

// Check refuses what the loss cannot compute, each with the reason.
func (s Spec) Check() error {
	if !(s.Beta > 0) || math.IsInf(s.Beta, 0) {
		return fmt.Errorf("dpo: beta must be > 0 and finite, got %g", s.Beta)
	}
	seen := map[string]bool{}
	for _, t := range s.Types {
		if !slices.Contains(LossTypes, t) {
			return fmt.Errorf("dpo: loss type %q (want %s)", t, strings.Join(LossTypes, ", "))
		}
		if seen[t] {
			return fmt.Errorf("dpo: loss type %q named twice (give it one weight)", t)
		}
		seen[t] = true
	}
	if s.Weights != nil && len(s.Weights) != max(len(s.Types), 1) {
		return fmt.Errorf("dpo: %d loss weights for %d loss types (want one each)", len(s.Weights), max(len(s.Types), 1))
	}
	for _, w := range s.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("dpo: loss weight %g (want >= 0 and finite)", w)
		}
	}
	switch {
	case s.LabelSmoothing != 0 && !seen[LossRobust] && !seen[LossSimPO]:
		// TRL reads label_smoothing only in robust and simpo (and losses
		// ftune does not offer); elsewhere it would be dropped.
		return fmt.Errorf("dpo: label_smoothing %g is used by loss types robust and simpo only", s.LabelSmoothing)
	case !(s.LabelSmoothing >= 0 && s.LabelSmoothing < 0.5):
		return fmt.Errorf("dpo: label_smoothing %g (want it in [0, 0.5): robust divides by 1 − 2ε)", s.LabelSmoothing)
	case s.SimPOGamma != 0 && !seen[LossSimPO]:
		return fmt.Errorf("dpo: simpo_gamma %g is used by loss type simpo only", s.SimPOGamma)
	case math.IsNaN(s.SimPOGamma) || math.IsInf(s.SimPOGamma, 0):
		return fmt.Errorf("dpo: simpo_gamma %g (want a finite margin)", s.SimPOGamma)
	}
	return nil
}

// NeedsReference says whether the loss reads the reference model's
// log-likelihoods (orpo and simpo alone do not: no reference forward).
func (s Spec) NeedsReference() bool {
	types, _ := s.types()
	return slices.ContainsFunc(types, func(t string) bool { return t != LossORPO && t != LossSimPO && t != LossSFT })
}

func (s Spec) gamma() float64 {
	if s.SimPOGamma == 0 {
		return DefaultSimPOGamma
	}
	return s.SimPOGamma
}

// types are the loss types with their weights.
func (s Spec) types() ([]string, []float64) {
	types := s.Types
	if len(types) == 0 {
		types = []string{LossSigmoid}
	}
	w := s.Weights
	if w == nil {
		w = make([]float64, len(types))
		for i := range w {
			w[i] = 1
		}
	}
	return types, w
}

// NeedsLengths says whether the loss reads the completions' lengths.
func (s Spec) NeedsLengths() bool {
	types, _ := s.types()
	return slices.ContainsFunc(types, func(t string) bool { return t != LossSigmoid && t != LossHinge && t != LossRobust })
}

// String names the loss for the log: "sigmoid", "ipo", "0.5×sft + sigmoid".
func (s Spec) String() string { return s.describe(true) }

// Name is the loss types with their weights, without their parameters
// ("sigmoid", "sigmoid + 0.5×sft", "simpo"): what a log line names the
// loss by.
func (s Spec) Name() string { return s.describe(false) }

func (s Spec) describe(params bool) string {
	types, w := s.types()
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = t
		if w[i] != 1 {
			parts[i] = strconv.FormatFloat(w[i], 'g', -1, 64) + "×" + t
		}
		if !params {
			continue
		}
		switch {
		case t == LossRobust || t == LossSimPO && s.LabelSmoothing != 0:
			parts[i] += fmt.Sprintf(" (label smoothing %g)", s.LabelSmoothing)
		}
		if t == LossSimPO {
			parts[i] += fmt.Sprintf(" (gamma %g)", s.gamma())
		}
	}
	return strings.Join(parts, " + ")
}

// Loss is the DPO loss of a batch of pairs from the policy's and the
// reference's sequence log-likelihoods laid out as a batch's rows, the B
// chosen first, then the B rejected, and (for the types that read them:
// NeedsLengths) each row's completion tokens. It returns the loss, its
// gradient with respect to each policy log-likelihood and the batch's
// Stats (the rewards are β·(π − ref) whatever the loss, as TRL's
// DPOTrainer logs them; for a loss without a reference, ref is ignored and
// they are β·π/n, as its ORPO and CPO trainers log them).
// A non-finite log-likelihood (diverged weights) gives a non-finite loss
// with a zero gradient, not an error: the trainer's guard then skips the
// step as it skips a supervised step whose loss is NaN, and gives up with
// its advice after training.max_bad_steps of them.
func Loss(spec Spec, policy, ref []float64, lengths []int) (loss float64, grad []float64, st Stats, err error) {
	if len(policy) != len(ref) || len(policy) == 0 || len(policy)%2 != 0 {
		return 0, nil, st, fmt.Errorf("dpo: %d policy and %d reference log-likelihoods (want the same even, non-zero number)", len(policy), len(ref))
	}
	if err := spec.Check(); err != nil {
		return 0, nil, st, err
	}
	if spec.NeedsLengths() && len(lengths) != len(policy) {
		return 0, nil, st, fmt.Errorf("dpo: loss %s needs each row's completion length: %d lengths for %d rows", spec, len(lengths), len(policy))
	}
	B := len(policy) / 2
	beta, eps := spec.Beta, spec.LabelSmoothing
	grad = make([]float64, 2*B)
	chosenTokens := 0
	if spec.NeedsLengths() {
		for i := 0; i < B; i++ {
			chosenTokens += lengths[i]
		}
	}
	types, weights := spec.types()
	perPair := make([]float64, B) // the pair's share of the loss, times B
	for i := 0; i < B; i++ {
		pc, pr, rc, rr := policy[i], policy[B+i], ref[i], ref[B+i]
		dc, dr := pc-rc, pr-rr
		var nc, nr float64 = 1, 1
		if spec.NeedsLengths() {
			nc, nr = float64(max(lengths[i], 1)), float64(max(lengths[B+i], 1)) // TRL's clamp(min=1)
		}
		for k, t := range types {
			w := weights[k]
			var l, ddc, ddr float64 // the pair's loss and its derivatives in d_c and d_r
			switch t {
			case LossSigmoid, LossSigmoidNorm:
				z := beta * (dc - dr)
				if t == LossSigmoidNorm {
					z = beta * (dc/nc - dr/nr)
				}
				// −log σ(z) = softplus(−z); d/dz = −σ(−z).
				l = softplus(-z)
				dz := -sigmoid(-z) * beta
				ddc, ddr = dz, -dz
				if t == LossSigmoidNorm {
					ddc, ddr = dz/nc, -dz/nr
				}
			case LossHinge:
				if z := beta * (dc - dr); z < 1 {
					l, ddc, ddr = 1-z, -beta, beta
				}
			case LossIPO:
				m := dc/nc - dr/nr - 1/(2*beta)
				l = m * m
				ddc, ddr = 2*m/nc, -2*m/nr
			case LossRobust:
				z := beta * (dc - dr)
				l = ((1-eps)*softplus(-z) - eps*softplus(z)) / (1 - 2*eps)
				dz := -beta * ((1-eps)*sigmoid(-z) + eps*sigmoid(z)) / (1 - 2*eps)
				ddc, ddr = dz, -dz
			case LossSFT, LossORPO:
				// The batch's mean over its chosen tokens, −Σπ_c/N, which
				// TRL spreads over the pairs as one value each.
				if chosenTokens > 0 {
					l = -pc / float64(chosenTokens) * float64(B)
					ddc = -float64(B) / float64(chosenTokens)
				}
				if t == LossORPO {
					// −β·log σ(L); dL/da_c = 1/(1 − e^a_c), dL/da_r = −1/(1 − e^a_r).
					ac, ar := pc/nc, pr/nr
					L := (ac - ar) - (log1mexp(ac) - log1mexp(ar))
					l += beta * softplus(-L)
					dL := -beta * sigmoid(-L)
					ddc += dL / -math.Expm1(ac) / nc
					ddr += -dL / -math.Expm1(ar) / nr
				}
			case LossSimPO:
				y := beta*(pc/nc-pr/nr) - spec.gamma()
				l = (1-eps)*softplus(-y) + eps*softplus(y)
				dy := -(1-eps)*sigmoid(-y) + eps*sigmoid(y)
				ddc, ddr = dy*beta/nc, -dy*beta/nr
			}
			perPair[i] += w * l
			grad[i] += w * ddc / float64(B)
			grad[B+i] += w * ddr / float64(B)
		}
		loss += perPair[i] / float64(B)
		wc, wr := beta*dc, beta*dr
		if !spec.NeedsReference() {
			wc, wr = beta*pc/nc, beta*pr/nr
		}
		st.Loss += perPair[i]
		st.RewardChosen += wc
		st.RewardRejected += wr
		if wc > wr {
			st.Correct++
		}
		st.LogPChosen += pc
		st.LogPRejected += pr
	}
	st.Pairs, st.Chosen, st.Rejected = B, B, B
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		clear(grad)
	}
	return loss, grad, st, nil
}

// log1mexp is log(1 − eˣ) for x ≤ 0, accurate at both ends (Mächler's
// switch at −log 2).
func log1mexp(x float64) float64 {
	if x > -math.Ln2 {
		return math.Log(-math.Expm1(x))
	}
	return math.Log1p(-math.Exp(x))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplus is log(1 + eˣ).
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}
