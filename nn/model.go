package nn

import (
	"fmt"
	"sort"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Attention is one self-attention module. Phi-3 stores q, k and v as one
// fused projection, QKV (self_attn.qkv_proj); then Q, K and V are nil.
type Attention struct {
	Q, K, V, O *Linear
	QKV        *Linear
}

// MLP is the SwiGLU feed-forward: down(silu(gate(x))·up(x)). Phi-3 stores
// gate and up as one fused projection, GateUp (mlp.gate_up_proj: gate rows
// first, then up); then Gate and Up are nil.
type MLP struct {
	Gate, Up, Down *Linear
	GateUp         *Linear
}

// Block is one decoder layer.
type Block struct {
	Index        int
	InputNorm    *autograd.Var // input_layernorm.weight
	PostAttnNorm *autograd.Var // post_attention_layernorm.weight
	QNorm, KNorm *autograd.Var // self_attn.q_norm / k_norm.weight [head_dim] (Qwen3, Gemma 3); nil otherwise
	// PreFFNNorm and PostFFNNorm are Gemma's pre_/post_feedforward_layernorm
	// (nil otherwise); with them PostAttnNorm normalises the attention
	// output instead of the MLP input.
	PreFFNNorm, PostFFNNorm *autograd.Var
	Attn                    Attention
	MLP                     MLP
	SlidingWindow           int
	// NoRope: the layer rotates neither queries nor keys (SmolLM3's NoPE
	// layers, Config.NoRopeLayers); position comes from the causal mask.
	NoRope bool
}

// Model is a Llama-family causal LM.
type Model struct {
	Config  Config
	Embed   *autograd.Var // model.embed_tokens.weight [V,H]
	Layers  []*Block
	Norm    *autograd.Var // model.norm.weight
	LMHead  *Linear       // lm_head; its Weight is Embed when tied
	Backend tensor.Backend
	DType   tensor.DType // compute dtype (F32 on the CPU)
	// Checkpointing recomputes each decoder block during the backward
	// instead of keeping its activations.
	Checkpointing bool
	// OffloadCheckpoints, with Checkpointing, keeps each block's saved
	// input in host memory from the forward to the backward on a backend
	// that can (autograd's Tape.Offload: a GPU's pinned memory); the first
	// block's input, the embeddings, too when they are frozen (an
	// unrecorded op's output; trained embeddings' output stays). No effect
	// on the CPU, or when the forward keeps hidden states (KeepHidden: the
	// caller reads them).
	OffloadCheckpoints bool
	// MLPChunkTokens > 0 runs each block's MLP in training over chunks of
	// this many tokens, each recomputed by its own backward (tiledMLP): a
	// step then holds the MLP's intermediate_size-wide tensors for one
	// chunk instead of every token, for one more MLP forward.
	MLPChunkTokens int
	// EmbeddingHook, when set, transforms the token embeddings before the
	// first block (NEFTune noise during training, for instance); it sees
	// the tape, nil in inference.
	EmbeddingHook func(tp *autograd.Tape, h *autograd.Var) *autograd.Var
	// EmbedCopy, when set, is looked up instead of Embed: a trainable copy
	// of the table (PEFT's modules_to_save, attached by package lora).
	EmbedCopy *autograd.Var
	// Source is the folder the weights were loaded from and its
	// Fingerprint (zero for a model built in memory).
	Source Source
	// rope carries dynamic-NTK RoPE state across calls as transformers does.
	rope RopeState
	// ropeRows keeps cos and sin per position for the global and the local
	// (Gemma 3) frequencies, from which each pass gathers its tables (nil:
	// computed for each pass alone). A copy of the Model shares it.
	ropeRows *ropeCache
}

// Batch is the input of a forward pass. Only InputIDs is required.
type Batch struct {
	InputIDs      *tensor.Tensor // [B,T] I32/I64
	AttentionMask *tensor.Tensor // [B,T], 1 = token, 0 = padding; nil = all tokens
	PositionIDs   []int          // [B*T]; nil = 0..T-1 per row (offset by the cache)
	Segments      *tensor.Tensor // [B,T] document ids of packed rows; nil = one document per row
	Labels        *tensor.Tensor // [B,T] I64 with -100 = ignore; shifted inside, as transformers does
}

// Output of a forward pass.
type Output struct {
	Logits *autograd.Var   // [B,T,V]; nil when only the loss was asked for
	Hidden []*autograd.Var // embeddings, each block's output, then the final norm's output
	Loss   *autograd.Var   // scalar when labels were given
	// RowLoss, with ForwardOptions.RowLosses, is each token's
	// −log p(its shifted label) [B·T] (0 where the label is ignored) in
	// place of Loss, for objectives that weigh sequences (preference
	// optimisation).
	RowLoss *autograd.Var
}

// ForwardOptions select what a forward pass keeps.
type ForwardOptions struct {
	KeepHidden bool   // collect every hidden state
	LossOnly   bool   // training: never materialise the full logits
	Cache      *Cache // KV cache for generation; nil = none
	// LossChunk is the number of rows per cross-entropy chunk when LossOnly
	// (0: autograd.LossChunkRows of the vocabulary).
	LossChunk int
	// NoHead stops after the blocks and the final norm: no logits and no
	// loss, for callers that read only what the blocks compute (an
	// importance matrix), which would otherwise pay for the LM head's
	// product, as large as all the blocks' at a 128k vocabulary.
	NoHead bool
	// RowLosses, with labels, returns Output.RowLoss instead of the mean
	// Loss, through the fused head (never the full logits); the LM head
	// must be frozen and plain (no adapter, no bias).
	RowLosses bool
}

// IgnoreIndex is the label that contributes no loss (transformers' -100).
const IgnoreIndex = -100

// MasterDType is the dtype of what a run trains and of the RoPE tables:
// the compute dtype, except that bf16 activations keep float32 masters
// (adapters, their optimizer state, trained copies) and float32 angles,
// as PEFT under autocast does.
func (m *Model) MasterDType() tensor.DType {
	if m.DType == tensor.BF16 {
		return tensor.F32
	}
	return m.DType
}

// Params returns the model's parameters keyed by their Hugging Face names
// (a tied lm_head is listed once, as model.embed_tokens.weight).
func (m *Model) Params() map[string]*autograd.Var {
	p := map[string]*autograd.Var{"model.embed_tokens.weight": m.Embed, "model.norm.weight": m.Norm}
	if !m.Config.TieEmbeddings {
		p["lm_head.weight"] = m.LMHead.Weight
	}
	for _, b := range m.Layers {
		pre := fmt.Sprintf("model.layers.%d.", b.Index)
		p[pre+"input_layernorm.weight"] = b.InputNorm
		p[pre+"post_attention_layernorm.weight"] = b.PostAttnNorm
		if b.QNorm != nil {
			p[pre+"self_attn.q_norm.weight"] = b.QNorm
			p[pre+"self_attn.k_norm.weight"] = b.KNorm
		}
		if b.PreFFNNorm != nil {
			p[pre+"pre_feedforward_layernorm.weight"] = b.PreFFNNorm
			p[pre+"post_feedforward_layernorm.weight"] = b.PostFFNNorm
		}
		for _, l := range b.Linears() {
			p[l.Name+".weight"] = l.Weight
			if l.Bias != nil {
				p[l.Name+".bias"] = l.Bias
			}
		}
	}
	return p
}

// ParamNames lists Params' keys sorted.
func (m *Model) ParamNames() []string {
	p := m.Params()
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Linears returns the projection layers of a block: q, k, v, o, gate, up,
// down, or for Phi-3 qkv, o, gate_up, down.
func (b *Block) Linears() []*Linear {
	if b.Attn.QKV != nil {
		return []*Linear{b.Attn.QKV, b.Attn.O, b.MLP.GateUp, b.MLP.Down}
	}
	return []*Linear{b.Attn.Q, b.Attn.K, b.Attn.V, b.Attn.O, b.MLP.Gate, b.MLP.Up, b.MLP.Down}
}

// Linears returns every linear layer of the model (lm_head last).
func (m *Model) Linears() []*Linear {
	var out []*Linear
	for _, b := range m.Layers {
		out = append(out, b.Linears()...)
	}
	return append(out, m.LMHead)
}

// SetTrainable freezes (false) or unfreezes every base parameter.
func (m *Model) SetTrainable(on bool) {
	for _, v := range m.Params() {
		v.SetRequiresGrad(on)
	}
}

// Forward runs the model. With labels it also returns transformers' causal
// LM loss: labels shifted left by one, mean over the tokens not ignored.
//
// On an inference tape (autograd.NewInference) and without a Cache, the
// pass gives its activations back to the backend as it goes, instead of
// to Go's collector: each block's intermediates once the block is done,
// and at the end everything the pass read and its constants. Out's tensors
// (logits, loss, row losses, hidden states) are the caller's. With a Cache
// it releases nothing: the keys and values the blocks read are the
// cache's.
func (m *Model) Forward(tp *autograd.Tape, in Batch, opt ForwardOptions) (out Output, err error) {
	if perr := tensor.Catch(func() { out, err = m.forward(tp, in, opt) }); perr != nil {
		return Output{}, perr
	}
	if err == nil && opt.Cache == nil {
		err = tp.ReleasePass(append([]*autograd.Var{out.Logits, out.Loss, out.RowLoss}, out.Hidden...)...)
	}
	return out, err
}

// releaseRead is tp.ReleaseRead(keep...) inside the forward, where a
// failure is a panic that Forward returns as its error.
func releaseRead(tp *autograd.Tape, keep ...*autograd.Var) {
	if err := tp.ReleaseRead(keep...); err != nil {
		panic(&tensor.Error{Err: fmt.Errorf("nn: %w", err)})
	}
}

func (m *Model) forward(tp *autograd.Tape, in Batch, opt ForwardOptions) (Output, error) {
	c := m.Config
	if in.InputIDs == nil || in.InputIDs.Rank() != 2 {
		return Output{}, fmt.Errorf("nn: input_ids must be [batch, seq]")
	}
	B, T := in.InputIDs.Dim(0), in.InputIDs.Dim(1)
	past := 0
	if opt.Cache != nil {
		past = opt.Cache.Len
	}
	pos := in.PositionIDs
	if pos == nil {
		pos = make([]int, B*T)
		for i := range pos {
			pos[i] = past + i%T
		}
	} else if len(pos) != B*T {
		return Output{}, fmt.Errorf("nn: %d position ids for a [%d,%d] batch", len(pos), B, T)
	}
	maxPos := 0
	for _, p := range pos {
		maxPos = max(maxPos, p+1)
	}
	rows := m.ropeRows
	if rows == nil {
		rows = &ropeCache{}
	}
	rows.mu.Lock()
	cos, sin := rows.rows[0].tables(c, m.Backend, m.MasterDType(), pos, B, T, m.rope.Step(c, maxPos))
	localCos, localSin := cos, sin
	if c.LocalRope != nil {
		lc := c
		lc.Rope = *c.LocalRope
		localCos, localSin = rows.rows[1].tables(lc, m.Backend, m.MasterDType(), pos, B, T, maxPos)
	}
	rows.mu.Unlock()
	// Read by every block's forward and, checkpointed, its recompute.
	tp.ReleaseAfterBackward(cos, sin, localCos, localSin)
	scale := c.attentionScale()

	var out Output
	table := m.Embed
	if m.EmbedCopy != nil {
		table = m.EmbedCopy
	}
	looked := tp.Embedding(table, in.InputIDs)
	h := tp.Cast(looked, m.DType)
	if h != looked && !looked.RequiresGrad() {
		// The lookup in the table's precision is dead once cast (no
		// backward reads it): on a GPU, [B·T, hidden] float32 that would
		// wait for Go's collector, 1.25 GiB at Llama-3-8B's width and
		// 81,920 tokens. An inference tape has it as read by the cast.
		if tp.Inference() {
			releaseRead(tp, h)
		} else if err := tensor.Release(looked.Value); err != nil {
			return out, err
		}
	}
	if c.EmbedScale != 0 {
		h = tp.Scale(h, c.EmbedScale)
	}
	if m.EmbeddingHook != nil {
		h = m.EmbeddingHook(tp, h)
	}
	if e := c.EmbedMultiplier; e != 0 && e != 1 {
		// Granite multiplies after the embedding module, where Gemma's
		// scale is the module's own: a hook on the module's output (TRL's
		// NEFTune) sees these embeddings unscaled.
		h = tp.Scale(h, e)
	}
	if opt.KeepHidden {
		out.Hidden = append(out.Hidden, h)
		tp.Keep(h)
	}
	keyMask := in.AttentionMask
	if opt.Cache != nil && keyMask != nil {
		keyMask = opt.Cache.extendMask(keyMask)
	}
	for i, blk := range m.Layers {
		p := tensor.AttentionParams{
			Scale:       float32(scale),
			Softcap:     float32(c.AttnSoftcap),
			Causal:      true,
			QueryOffset: past,
			Window:      blk.SlidingWindow,
			KeyMask:     keyMask,
			Segments:    in.Segments,
		}
		bcos, bsin := cos, sin
		if blk.SlidingWindow > 0 {
			bcos, bsin = localCos, localSin
		}
		run := func(tp *autograd.Tape, x []*autograd.Var) []*autograd.Var {
			// A checkpointed block is recomputed after Forward returns,
			// when a caller may have swapped the adapters out again (lora's
			// ForwardRouted): the recompute must use this forward's.
			tp.Preserve(adapterBinding{blk})
			return []*autograd.Var{m.block(tp, blk, x[0], bcos, bsin, p, opt.Cache)}
		}
		if m.Checkpointing && tp.Training() && opt.Cache == nil {
			saved := h
			h = tp.Checkpoint(run, saved)[0]
			// The block's input is read again only by its recompute.
			if m.OffloadCheckpoints && !opt.KeepHidden {
				if err := tp.Offload(saved); err != nil {
					return out, err
				}
			}
		} else {
			h = run(tp, []*autograd.Var{h})[0]
		}
		if opt.KeepHidden {
			out.Hidden = append(out.Hidden, h)
			if i < len(m.Layers)-1 {
				// Read by the next blocks, and the caller's: never released.
				// (The last block's output gives way to the final norm's.)
				tp.Keep(h)
			}
		}
		if opt.Cache == nil {
			// Inference: of what the block read, only its output goes on.
			releaseRead(tp, h)
		}
	}
	if opt.Cache != nil {
		opt.Cache.Len += T
	}
	h = m.norm(tp, h, m.Norm)
	if opt.KeepHidden {
		out.Hidden[len(out.Hidden)-1] = h
	}
	if d := c.LogitsDivisor; d != 0 && d != 1 && !opt.NoHead {
		// Granite divides the logits; the head is linear (no bias in
		// Granite), so its input is divided instead: hidden_size values a
		// token rather than vocab_size, and the fused head and loss below
		// need no change.
		h = tp.Scale(h, 1/d)
	}
	if opt.NoHead {
		if tp.Inference() && !opt.KeepHidden && opt.Cache == nil {
			// The final norm's output is no one's: nothing reads it and
			// nothing returns it.
			if err := tensor.Release(h.Value); err != nil {
				return out, err
			}
		}
		return out, nil
	}
	if in.Labels != nil && opt.RowLosses {
		rows, err := m.rowLosses(tp, h, in.Labels, opt.LossChunk)
		if err != nil {
			return out, err
		}
		out.RowLoss = rows
		return out, nil
	}
	if in.Labels != nil && opt.LossOnly {
		loss, err := m.chunkedLoss(tp, h, in.Labels, opt.LossChunk)
		if err != nil {
			return out, err
		}
		out.Loss = loss
		return out, nil
	}
	out.Logits = m.logits(tp, h)
	if in.Labels != nil {
		loss, err := m.shiftedLoss(tp, out.Logits, in.Labels)
		if err != nil {
			return out, err
		}
		out.Loss = loss
	}
	return out, nil
}

// adapterBinding is which Adapter each of a block's linears has, as
// autograd.Stateful.
type adapterBinding struct{ b *Block }

func (a adapterBinding) Snapshot() func() {
	lins := a.b.Linears()
	bound := make([]Adapter, len(lins))
	for i, l := range lins {
		bound[i] = l.Adapter
	}
	return func() {
		for i, l := range lins {
			l.Adapter = bound[i]
		}
	}
}

func (m *Model) block(tp *autograd.Tape, b *Block, x *autograd.Var, cos, sin *tensor.Tensor, p tensor.AttentionParams, cache *Cache) *autograd.Var {
	c := m.Config
	B, T := x.Value.Dim(0), x.Value.Dim(1)
	h := m.norm(tp, x, b.InputNorm)
	q, k, v := m.projectQKV(tp, b, h)
	// The normed input (hidden_size floats a token) is computed again from
	// x by the backwards that read it, the projections' LoRA, instead of
	// being held through the forward; likewise the MLP's (gatedMLP).
	tp.Forget(h)
	q = tp.Reshape(q, B, T, c.NumHeads, c.HeadDim)
	k = tp.Reshape(k, B, T, c.NumKVHeads, c.HeadDim)
	v = tp.Reshape(v, B, T, c.NumKVHeads, c.HeadDim)
	q, k = m.headNorm(tp, q, b.QNorm), m.headNorm(tp, k, b.KNorm)
	if !b.NoRope {
		q = rotate(tp, q, cos, sin)
		k = rotate(tp, k, cos, sin)
	}
	if cache != nil {
		k, v = cache.append(b.Index, k, v)
	}
	a := tp.Attention(q, k, v, p)
	a = tp.Reshape(a, B, T, c.NumHeads*c.HeadDim)
	a = b.Attn.O.Forward(tp, a)
	if cache == nil {
		// Inference: the normed input, q, k, v and the attention's
		// output are dead; the residual and the projection go on.
		releaseRead(tp, x, a)
	}
	// The residual add after attention feeds the MLP's norm: one fused
	// AddRMSNorm node (same values as Add then RMSNorm).
	if b.PreFFNNorm == nil {
		x, h = m.addNorm(tp, x, m.residualScale(tp, a), b.PostAttnNorm)
		// The MLP's output (the down projection's), read by no backward,
		// takes the residual sum: one buffer fewer held per block.
		return tp.AddInPlace(m.residualScale(tp, m.gatedMLP(tp, b, h)), x)
	}
	// Gemma: each sublayer's output is normalised before the residual add;
	// the add after attention feeds the pre-FFN norm.
	x, h = m.addNorm(tp, x, m.residualScale(tp, m.norm(tp, a, b.PostAttnNorm)), b.PreFFNNorm)
	f := m.gatedMLP(tp, b, h)
	return tp.AddInPlace(m.residualScale(tp, m.norm(tp, f, b.PostFFNNorm)), x)
}

// residualScale is Granite's residual_multiplier on a sublayer's output
// before its residual add; other families add it as it is.
func (m *Model) residualScale(tp *autograd.Tape, a *autograd.Var) *autograd.Var {
	if r := m.Config.ResidualScale; r != 0 && r != 1 {
		return tp.Scale(a, r)
	}
	return a
}

// shiftLabels returns labels[:,1:] padded with -100: the target of token t
// is the label of token t+1. The loss's backward is its last reader.
func shiftLabels(tp *autograd.Tape, labels *tensor.Tensor) *tensor.Tensor {
	B, T := labels.Dim(0), labels.Dim(1)
	l := labels.I64()
	out := make([]int64, B*T)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			if t+1 < T {
				out[b*T+t] = l[b*T+t+1]
			} else {
				out[b*T+t] = IgnoreIndex
			}
		}
	}
	shifted := tensor.FromHost(labels.Backend(), tensor.I64, out, B*T)
	tp.ReleaseAfterBackward(shifted)
	return shifted
}

func (m *Model) shiftedLoss(tp *autograd.Tape, logits *autograd.Var, labels *tensor.Tensor) (*autograd.Var, error) {
	V := logits.Value.Dim(-1)
	if labels.Rank() != 2 || labels.Dim(0) != logits.Value.Dim(0) || labels.Dim(1) != logits.Value.Dim(1) {
		return nil, fmt.Errorf("nn: labels %v do not match logits %v", labels.Shape(), logits.Shape())
	}
	// bf16 logits are widened for the softmax and the loss (the models'
	// logits.float() in transformers).
	return tp.CrossEntropy(tp.Cast(tp.Reshape(logits, -1, V), m.MasterDType()), shiftLabels(tp, labels), IgnoreIndex)
}
