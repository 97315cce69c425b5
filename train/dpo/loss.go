package dpo

import (
	"fmt"
	"math"
)

// Stats are the sums a batch adds to what a step or an evaluation reports
// (TRL's names): the loss, the rewards β(π − ref) of the chosen and the
// rejected completions, how many pairs the policy ranks right (reward
// chosen > reward rejected) and the policy's log-likelihoods.
type Stats struct {
	Pairs                        int
	Loss                         float64
	RewardChosen, RewardRejected float64
	Correct                      float64
	LogPChosen, LogPRejected     float64
}

// Add accumulates another batch's sums.
func (s *Stats) Add(o Stats) {
	s.Pairs += o.Pairs
	s.Loss += o.Loss
	s.RewardChosen += o.RewardChosen
	s.RewardRejected += o.RewardRejected
	s.Correct += o.Correct
	s.LogPChosen += o.LogPChosen
	s.LogPRejected += o.LogPRejected
}

// Metrics are the means under prefix ("train/", "val/"), named as TRL
// logs them: rewards/chosen, rewards/rejected, rewards/margins,
// rewards/accuracies, logps/chosen and logps/rejected, and with withLoss
// the DPO loss as loss (a training step's loss is the trainer's own).
func (s Stats) Metrics(prefix string, withLoss bool) map[string]float64 {
	if s.Pairs == 0 {
		return nil
	}
	n := float64(s.Pairs)
	m := map[string]float64{
		prefix + "rewards/chosen":     s.RewardChosen / n,
		prefix + "rewards/rejected":   s.RewardRejected / n,
		prefix + "rewards/margins":    (s.RewardChosen - s.RewardRejected) / n,
		prefix + "rewards/accuracies": s.Correct / n,
		prefix + "logps/chosen":       s.LogPChosen / n,
		prefix + "logps/rejected":     s.LogPRejected / n,
	}
	if withLoss {
		m[prefix+"loss"] = s.Loss / n
	}
	return m
}

// Loss is the sigmoid DPO loss of a batch of pairs, the mean over pairs of
// −log σ(β·((π_c − π_r) − (ref_c − ref_r))), from the policy's and the
// reference's sequence log-likelihoods laid out as a batch's rows: the B
// chosen first, then the B rejected. It returns the loss, its gradient
// with respect to each policy log-likelihood and the batch's Stats. A
// non-finite log-likelihood (diverged weights) gives a non-finite loss
// with a zero gradient, not an error: the trainer's guard then skips the
// step as it skips a supervised step whose loss is NaN, and gives up with
// its advice after training.max_bad_steps of them.
func Loss(beta float64, policy, ref []float64) (loss float64, grad []float64, st Stats, err error) {
	if len(policy) != len(ref) || len(policy) == 0 || len(policy)%2 != 0 {
		return 0, nil, st, fmt.Errorf("dpo: %d policy and %d reference log-likelihoods (want the same even, non-zero number)", len(policy), len(ref))
	}
	B := len(policy) / 2
	grad = make([]float64, 2*B)
	for i := 0; i < B; i++ {
		pc, pr, rc, rr := policy[i], policy[B+i], ref[i], ref[B+i]
		z := beta * ((pc - pr) - (rc - rr))
		// −log σ(z) = softplus(−z), computed without overflow.
		l := softplus(-z)
		// d/dz −log σ(z) = −σ(−z).
		dz := -sigmoid(-z) * beta / float64(B)
		grad[i], grad[B+i] = dz, -dz
		loss += l / float64(B)
		wc, wr := beta*(pc-rc), beta*(pr-rr)
		st.Loss += l
		st.RewardChosen += wc
		st.RewardRejected += wr
		if wc > wr {
			st.Correct++
		}
		st.LogPChosen += pc
		st.LogPRejected += pr
	}
	st.Pairs = B
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		clear(grad)
	}
	return loss, grad, st, nil
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
