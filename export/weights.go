package export

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Source yields a model's parameters one at a time as float32 with an
// adapter's update merged (W + s·B·A; DoRA's (m/n)·(W + s·B·A) row-wise;
// a modules_to_save copy in place of its module), without touching the model: the
// model may keep serving, and an NF4 base is dequantized per tensor rather
// than merged in place (which NF4 storage cannot hold). Only one tensor is
// ever expanded to float32 at a time.
type Source struct {
	m      *nn.Model
	a      *lora.Adapter
	params map[string]*tensor.Tensor
	names  []string
	layers map[string]*lora.Layer    // by weight name
	copies map[string]*tensor.Tensor // modules_to_save values, by parameter name
	// untied is set when the model ties lm_head to the embeddings and the
	// adapter trains a copy of either: PEFT's copies are separate modules,
	// so the merged weights hold both tables (see Untied).
	untied bool
	// lastBytes is the size of the float32 tensor Float32 returned last.
	lastBytes int
}

// collectAfterBytes is the size of a returned tensor past which Float32
// collects garbage before expanding the next (see Float32).
const collectAfterBytes = 32 << 20

// NewSource checks that the adapter (nil for none) fits m and prepares to
// read merged weights. An adapter on a tied lm_head is refused: merging it
// would change the input embedding too, which the adapter does not.
func NewSource(m *nn.Model, a *lora.Adapter) (*Source, error) {
	s := &Source{m: m, a: a, params: map[string]*tensor.Tensor{}, layers: map[string]*lora.Layer{}, copies: map[string]*tensor.Tensor{}}
	for name, v := range m.Params() {
		s.params[name] = v.Value
	}
	s.names = m.ParamNames()
	if a == nil {
		return s, nil
	}
	lin := map[string]*nn.Linear{}
	for _, l := range m.Linears() {
		lin[l.Name] = l
	}
	for _, mod := range a.Modules() {
		l, ok := lin[mod]
		if !ok {
			return nil, fmt.Errorf("export: adapter %q targets %s, which the model does not have", a.Name, mod)
		}
		if mod == "lm_head" && m.Config.TieEmbeddings {
			return nil, fmt.Errorf("export: adapter %q targets lm_head, which shares its weight with embed_tokens (tie_word_embeddings); a merged file cannot hold both", a.Name)
		}
		if _, ok := s.params[mod+".weight"]; !ok {
			return nil, fmt.Errorf("export: adapter %q targets %s, whose weight is not a model parameter", a.Name, mod)
		}
		ly := a.Layers[mod]
		if got, want := ly.B.Value.Dim(0), l.Out(); got != want {
			return nil, fmt.Errorf("export: adapter %q: %s lora_B has %d rows, the layer has %d outputs", a.Name, mod, got, want)
		}
		if got, want := ly.A.Value.Dim(1), l.In(); got != want {
			return nil, fmt.Errorf("export: adapter %q: %s lora_A has %d columns, the layer has %d inputs", a.Name, mod, got, want)
		}
		s.layers[mod+".weight"] = ly
	}
	if m.Config.TieEmbeddings && (a.Copies[lora.EmbedModule] != nil || a.Copies["lm_head"] != nil) {
		// The untrained end keeps the base table.
		s.untied = true
		s.params["lm_head.weight"] = m.Embed.Value
		s.names = append(s.names, "lm_head.weight")
		slices.Sort(s.names)
	}
	for _, c := range a.Copies {
		for _, v := range []*autograd.Var{c.Weight, c.Bias} {
			if v == nil {
				continue
			}
			base, ok := s.params[v.Name]
			if !ok {
				return nil, fmt.Errorf("export: adapter %q saves %s, which is not a model parameter", a.Name, v.Name)
			}
			if !base.Shape().Equal(v.Value.Shape()) {
				return nil, fmt.Errorf("export: adapter %q: %s is %v, the model's is %v", a.Name, v.Name, v.Value.Shape(), base.Shape())
			}
			s.copies[v.Name] = v.Value
		}
	}
	return s, nil
}

// Names lists the parameters in sorted Hugging Face names (a tied lm_head
// appears once, as model.embed_tokens.weight, unless Untied).
func (s *Source) Names() []string { return append([]string(nil), s.names...) }

// Untied reports that the model ties lm_head to the embeddings but the
// adapter trained a separate copy of one of them (modules_to_save, as PEFT
// does without ensure_weight_tying): Names then lists lm_head.weight too,
// and a merged model must say tie_word_embeddings: false.
func (s *Source) Untied() bool { return s.untied }

// DType returns the storage dtype of a parameter in the model.
func (s *Source) DType(name string) tensor.DType { return s.params[name].DType() }

// Shape returns a parameter's shape.
func (s *Source) Shape(name string) []int { return s.params[name].Shape().Clone() }

// Adapted reports whether the adapter changes this parameter.
func (s *Source) Adapted(name string) bool { return s.layers[name] != nil || s.copies[name] != nil }

// HasNF4 reports whether any parameter is stored NF4 (the export then
// dequantizes it, and says so).
func (s *Source) HasNF4() bool {
	for _, p := range s.params {
		if p.DType() == tensor.NF4 {
			return true
		}
	}
	return false
}

// BF16Bits returns the bits of a parameter the adapter leaves unchanged
// and the CPU holds in bf16: the model's own storage, not a copy, to read
// and not to change. An export encodes such a parameter from them without
// the float32 copy Float32 makes (twice the bf16 bytes; for a 1B model's
// embeddings 1 GiB), with the same result: a finite bf16 widens to float32
// exactly. ok is false for any other parameter, and for one holding a NaN
// or an infinity, which Float32 then reports. Like Float32, it collects
// the garbage of a large tensor encoded before it, and counts the one its
// caller will encode as about as large as the bits.
func (s *Source) BF16Bits(name string) (bits []uint16, ok bool) {
	p, found := s.params[name]
	if !found || s.Adapted(name) || p.DType() != tensor.BF16 {
		return nil, false
	}
	if _, cpu := p.Backend().(*tensor.CPUBackend); !cpu || !p.IsContiguous() {
		return nil, false
	}
	if s.lastBytes >= collectAfterBytes {
		runtime.GC()
	}
	s.lastBytes = 2 * p.Numel()
	bits = tensor.U16Data(p)
	for _, u := range bits {
		if u&0x7f80 == 0x7f80 { // exponent all ones: NaN or ±Inf
			return nil, false
		}
	}
	return bits, true
}

// BF16Bytes is BF16Bits as little-endian bytes (a bf16 export).
func (s *Source) BF16Bytes(name string) ([]byte, bool) {
	bits, ok := s.BF16Bits(name)
	if !ok {
		return nil, false
	}
	out := make([]byte, 2*len(bits))
	for i, u := range bits {
		out[2*i], out[2*i+1] = byte(u), byte(u>>8)
	}
	return out, true
}

// Float32 returns a parameter as float32, row-major, with the adapter's
// update added when it targets it. The sum is formed in float32 as PEFT's
// merge does in the weight's dtype upcast (the caller rounds to the file's
// dtype once, so bf16 sees a single rounding). A NaN or Inf in the result
// is an error wrapping ErrNonFinite.
//
// The tensors an export expands one after another are large and die at
// once, faster than Go's collector paces itself: left to it, the dead ones
// piled up during a 1B model's export (8.7 GiB peak RSS for 2.3 GiB of
// bf16 weights; bench/results/export-memory-2026-12-06.md). So after a tensor of collectAfterBytes or
// more, Float32 collects before expanding the next, whose memory then
// reuses the last one's: the export holds the model and about one tensor.
// The live heap is the model's weights, which hold no pointers, so a
// collection costs milliseconds.
func (s *Source) Float32(name string) (out []float32, err error) {
	p, ok := s.params[name]
	if !ok {
		return nil, fmt.Errorf("export: the model has no parameter %q", name)
	}
	if s.lastBytes >= collectAfterBytes {
		runtime.GC()
	}
	defer func() { s.lastBytes = 4 * len(out) }()
	err = tensor.Catch(func() {
		switch ly, c := s.layers[name], s.copies[name]; {
		case ly != nil:
			out = ly.MergedWeight(p).F32()
		case c != nil:
			out = c.F32()
		default:
			out = p.F32()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", name, err)
	}
	if err := CheckFinite(name, out); err != nil {
		return nil, err
	}
	return out, nil
}
