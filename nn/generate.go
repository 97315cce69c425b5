package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/ftune/ftune/tensor"
)

// GenerateOptions control decoding. The zero value is greedy decoding of
// up to 32 tokens: the options mean what they say, and a model folder's
// generation_config.json changes none of them (Config.Generation.Sampling
// gives the options transformers' generate() would sample with).
type GenerateOptions struct {
	MaxNewTokens int     // 0 = 32
	Temperature  float64 // 0 = greedy (argmax)
	// TopK keeps the k most likely tokens and every token whose logit
	// equals the k-th's, as transformers' TopKLogitsWarper does (it keeps
	// each logit ≥ the k-th largest); 0 = all (not transformers' default
	// of 50: DefaultTopK).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches p (nucleus); 0 or 1 = all. Tokens of equal probability are
	// ordered by id, so a cut among them keeps the lower ids (transformers'
	// choice there follows torch's sort order, which no id rule gives).
	TopP float64
	// MinP keeps, when sampling, the tokens whose probability is at least
	// MinP times the most likely token's, after the temperature, top-k and
	// top-p (transformers' MinPLogitsWarper, which comes after them);
	// 0 = off, at most 1.
	MinP float64
	// RepetitionPenalty, when neither 0 nor 1, is transformers'
	// repetition_penalty (RepetitionPenaltyLogitsProcessor): before
	// anything else, the logit of each token id the sequence holds (the
	// prompt and the tokens generated so far, each id once) is divided by
	// it, or multiplied when negative. Above 1 it makes repeats less
	// likely, below 1 more. It applies to greedy decoding too.
	RepetitionPenalty float64
	Seed              uint64 // sampling stream
	StopTokens        []int  // generation ends after emitting one of these
	// OnToken, when set, sees each new token as it is produced (streaming);
	// returning false stops generation.
	OnToken func(id int) bool
	// Interrupt, when set, is asked before each decoder layer of every
	// forward pass, the prompt's prefill included (ctx.Err fits): an error
	// it returns stops generation within one layer's work, and Generate
	// returns the tokens so far with an error wrapping it.
	Interrupt func() error
}

// ErrContextFull is wrapped by Generate's error when the prompt leaves no
// room in the model's context (max_position_embeddings).
var ErrContextFull = errors.New("prompt fills the model's context")

// ErrNonFinite is wrapped by Generate's error when the logits hold NaN or
// Inf: the weights or an adapter hold non-finite values, and any token
// picked from them would be garbage.
var ErrNonFinite = errors.New("non-finite logits")

// Room is how many tokens can follow a prompt of n tokens within the
// model's context (0 when it is full).
func (m *Model) Room(n int) int { return max(0, m.Config.MaxPositions-n) }

// Generate continues prompt and returns the new tokens (the stop token, if
// one ended generation, included). It runs one prefill over the prompt and
// then one position at a time through a KV cache. With longrope, the step
// where the sequence first passes original_max_position_embeddings drops
// the cache and runs the whole sequence again on the long factors, as
// transformers' Phi3ForCausalLM does (Config.LongRopeRecompute): one slow
// step, and from then on the tokens of a forward without a cache.
func (m *Model) Generate(prompt []int, opt GenerateOptions) ([]int, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("nn: generate: empty prompt")
	}
	if opt.MaxNewTokens <= 0 {
		opt.MaxNewTokens = 32
	}
	// Written so that NaN fails too: a NaN temperature would make every
	// probability NaN and the sampled tokens garbage.
	if !(opt.Temperature >= 0) || !(opt.TopP >= 0 && opt.TopP <= 1) || opt.TopK < 0 || !(opt.MinP >= 0 && opt.MinP <= 1) {
		return nil, fmt.Errorf("nn: generate: temperature ≥ 0, 0 ≤ top_p ≤ 1, top_k ≥ 0, 0 ≤ min_p ≤ 1 required (got %g, %g, %d, %g)", opt.Temperature, opt.TopP, opt.TopK, opt.MinP)
	}
	if !(opt.RepetitionPenalty >= 0) || math.IsInf(opt.RepetitionPenalty, 0) {
		return nil, fmt.Errorf("nn: generate: repetition penalty %g: want a finite value > 0 (0 or 1: off)", opt.RepetitionPenalty)
	}
	for _, id := range prompt {
		if id < 0 || id >= m.Config.VocabSize {
			return nil, fmt.Errorf("nn: generate: prompt token %d outside vocabulary of %d", id, m.Config.VocabSize)
		}
	}
	if m.Room(len(prompt)) == 0 {
		return nil, fmt.Errorf("nn: generate: %w: the prompt has %d tokens and the model holds %d positions (max_position_embeddings)", ErrContextFull, len(prompt), m.Config.MaxPositions)
	}
	opt.MaxNewTokens = min(opt.MaxNewTokens, m.Room(len(prompt)))
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	// The cache grows as tokens come (Cache): MaxNewTokens may be the
	// whole context while the reply stops after a few tokens.
	cache := m.NewCache(1, len(prompt)+opt.MaxNewTokens)
	cache.interrupt = opt.Interrupt
	var out []int
	var seen []bool // the ids of prompt and out, for the repetition penalty
	if penalized(opt) {
		seen = make([]bool, m.Config.VocabSize)
		for _, id := range prompt {
			seen[id] = true
		}
	}
	next := prompt
	for len(out) < opt.MaxNewTokens {
		if m.Config.LongRopeRecompute(cache.Len, cache.Len+len(next)) {
			cache.Reset()
			next = append(slices.Clone(prompt), out...)
		}
		ids := make([]int64, len(next))
		for i, t := range next {
			ids[i] = int64(t)
		}
		o, err := m.Forward(nil, Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, ForwardOptions{Cache: cache})
		if err != nil {
			return out, err
		}
		V := m.Config.VocabSize
		last := o.Logits.Value.Narrow(1, len(next)-1, 1).F64()[:V]
		if i := nonFinite(last); i >= 0 {
			return out, fmt.Errorf("nn: generate: %w at position %d (logit of token %d is %v): the model's weights or its adapter hold NaN or Inf values", ErrNonFinite, len(prompt)+len(out), i, last[i])
		}
		if seen != nil {
			penalize(last, seen, opt.RepetitionPenalty)
		}
		tok := sample(last, opt, rng)
		out = append(out, tok)
		if seen != nil {
			seen[tok] = true
		}
		if opt.OnToken != nil && !opt.OnToken(tok) {
			break
		}
		if slices.Contains(opt.StopTokens, tok) {
			break
		}
		next = []int{tok}
	}
	return out, nil
}

// nonFinite returns the index of the first NaN or Inf in v, or -1.
func nonFinite(v []float64) int {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return i
		}
	}
	return -1
}

// penalized reports whether opt's repetition penalty changes any logit.
func penalized(opt GenerateOptions) bool {
	return opt.RepetitionPenalty != 0 && opt.RepetitionPenalty != 1
}

// penalize applies the repetition penalty to logits in place: the logit
// of each id that seen marks is divided by penalty, or multiplied when it
// is negative (transformers' RepetitionPenaltyLogitsProcessor: once per
// id, however often it occurs).
func penalize(logits []float64, seen []bool, penalty float64) {
	for i, s := range seen {
		switch {
		case !s:
		case logits[i] < 0:
			logits[i] *= penalty
		default:
			logits[i] /= penalty
		}
	}
}

// sample picks the next token from one row of logits (after the
// repetition penalty: the processors transformers applies whether it
// samples or not). Sampling applies the warpers in transformers' order
// (GenerationMixin._get_logits_processor): temperature, top-k, top-p,
// min-p.
func sample(logits []float64, opt GenerateOptions, rng *rand.Rand) int {
	if opt.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	idx, p := distribution(logits, opt)
	u := rng.Float64()
	for i, v := range p {
		u -= v
		if u <= 0 {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}

// distribution is what sample draws from when opt.Temperature > 0: the
// token ids that the top-k, top-p and min-p filters keep, in that order,
// most likely first (ties by id), and their probabilities.
func distribution(logits []float64, opt GenerateOptions) (idx []int, p []float64) {
	idx = make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if opt.TopK > 0 && opt.TopK < len(idx) {
		// Ties with the k-th logit stay, as in transformers' top-k: which
		// of equal tokens to drop has no answer.
		n, kth := opt.TopK, logits[idx[opt.TopK-1]]
		for n < len(idx) && logits[idx[n]] >= kth {
			n++
		}
		idx = idx[:n]
	}
	mx := logits[idx[0]]
	p = make([]float64, len(idx))
	var sum float64
	for i, j := range idx {
		p[i] = math.Exp((logits[j] - mx) / opt.Temperature)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	if opt.TopP > 0 && opt.TopP < 1 {
		var acc float64
		for i := range p {
			acc += p[i]
			if acc >= opt.TopP {
				p, idx = p[:i+1], idx[:i+1]
				break
			}
		}
		sum = 0
		for _, v := range p {
			sum += v
		}
		for i := range p {
			p[i] /= sum
		}
	}
	if opt.MinP > 0 {
		// p is sorted, p[0] the largest: keep what reaches MinP·p[0]
		// (transformers removes probs < min_p·max; p[0] itself stays,
		// its min_tokens_to_keep of 1). Renormalising first, as it does
		// after top-p, changes no ratio to p[0].
		n := 1
		for n < len(p) && p[n] >= opt.MinP*p[0] {
			n++
		}
		if n < len(p) {
			p, idx = p[:n], idx[:n]
			sum = 0
			for _, v := range p {
				sum += v
			}
			for i := range p {
				p[i] /= sum
			}
		}
	}
	return idx, p
}
