package gguf

import (
	"fmt"
	"strings"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/nn"
)

// typePlan picks each tensor's type in a model file. For llama-quantize's
// mixes (Q4_0, Q4_1, Q5_0, Q5_1, the k-quant ones, IQ4_NL and IQ4_XS) it
// makes llama-quantize's
// choices (llama-quant.cpp, for the dense architectures ftune writes), so a
// file ftune writes as Q4_K_M holds what llama-quantize would make of the
// merged F32 model:
//
//   - the LM head (the embeddings when they are tied to it): Q6_K, or Q8_0
//     when its rows are not whole 256-value blocks;
//   - attn_v (a fused attn_qkv too: llama.cpp counts Phi-3's as attn_v)
//     and ffn_down get more bits: in Q4_K_M and Q5_K_M Q6_K in the layers
//     useMoreBits picks (the first and last eighth and every third
//     between), in Q4_K_S Q5_K in the first four attn_v and the first
//     eighth of ffn_down; in Q3_K_M Q5_K in the first two attn_v and the
//     first sixteenth of ffn_down, Q4_K in the rest of them and in
//     attn_output; in Q3_K_L Q5_K in all three; in Q2_K Q3_K in all three,
//     attn_v Q4_K where four or more query heads share a KV head; in
//     IQ4_NL and IQ4_XS Q5_K for attn_v where four or more query heads
//     share a KV head, and for the first eighth of ffn_down when there is
//     no importance matrix; in Q4_0 and Q5_0 Q4_1 and Q5_1 for the first
//     eighth of ffn_down when there is one;
//   - everything else 2-D in the file's type, and 1-D tensors in F32.
//
// A row that is not whole blocks of the type chosen falls back as
// llama.cpp falls back: Q2_K and Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to
// Q5_1, Q6_K to Q8_0, IQ4_XS to IQ4_NL, and a row that is not whole
// 32-value blocks either to F16 (SmolLM2's width, 576, takes the 32-value
// blocks). TypeNotes names the weights that fell back.
type typePlan struct {
	file    FileType
	base    TensorType
	layers  int
	gqa     int  // query heads per KV head
	tied    bool // no separate LM head: the embeddings are quantized as one
	imatrix bool // quantized with an importance matrix (IQ4 mixes differ)
	// output and embedding, when set, are the user's types for the LM
	// head and the embeddings (llama-quantize's --output-tensor-type and
	// --token-embedding-type).
	output, embedding *TensorType
}

// newTypePlan is the plan of the file opt describes (its type, whose
// tensor type is base; with an importance matrix or without; the user's
// types for the head and the embeddings) for a model of configuration c.
func newTypePlan(opt Options, base TensorType, c nn.Config) typePlan {
	p := typePlan{file: opt.FileType, base: base, layers: c.NumLayers, tied: c.TieEmbeddings,
		imatrix: opt.Importance != nil, output: opt.OutputType, embedding: opt.EmbeddingType}
	if c.NumKVHeads > 0 {
		p.gqa = c.NumHeads / c.NumKVHeads
	}
	return p
}

// plannedTensor is one tensor of a model file: its llama.cpp name, shape,
// the type the file's plan gives it and the type its mix wanted.
type plannedTensor struct {
	name        string
	shape       []int
	typ, wanted TensorType
}

// planFile lists the tensors of the file opt describes of model m (without
// the tensors the architecture adds, such as RoPE factors).
func planFile(m *nn.Model, opt Options) ([]plannedTensor, error) {
	c := m.Config
	arch, _, err := Architecture(c.ModelType)
	if err != nil {
		return nil, err
	}
	wtype, err := opt.FileType.TensorType()
	if err != nil {
		return nil, err
	}
	src, err := export.NewSource(m, nil)
	if err != nil {
		return nil, err
	}
	plan := newTypePlan(opt, wtype, c)
	var out []plannedTensor
	for _, hf := range orderedNames(src.Names()) {
		gname, err := TensorNameFor(arch, hf)
		if err != nil {
			return nil, err
		}
		shape := src.Shape(hf)
		typ, wanted := plan.tensorType(gname, shape)
		out = append(out, plannedTensor{gname, shape, typ, wanted})
	}
	return out, nil
}

// TypeNotes says which weights the file opt describes of model m stores in
// another type than its type (or mix) gives them, because their rows do
// not fill whole blocks of it: llama.cpp's fallbacks, which llama-quantize
// warns about too (one note per pair of types); nil when every weight gets
// its type.
func TypeNotes(m *nn.Model, opt Options) ([]string, error) {
	planned, err := planFile(m, opt)
	if err != nil {
		return nil, err
	}
	return fallbackNotes(opt.FileType, planned, "weights", "as llama.cpp stores them"), nil
}

// fallbackNotes says which of the planned tensors of a file of type ft
// (what: "weights") are stored in another type than the one they were
// meant to have, because their rows do not fill whole blocks of it (as:
// who does the same), one note per pair of types; nil when none is.
func fallbackNotes(ft FileType, planned []plannedTensor, what, as string) []string {
	type change struct{ from, to TensorType }
	var order []change
	named := map[change][]string{}
	for _, t := range planned {
		if t.typ == t.wanted {
			continue
		}
		ch := change{t.wanted, t.typ}
		if named[ch] == nil {
			order = append(order, ch)
		}
		named[ch] = append(named[ch], fmt.Sprintf("%s (rows of %d)", t.name, t.shape[len(t.shape)-1]))
	}
	var notes []string
	for _, ch := range order {
		values, _, _ := ch.from.blockInfo()
		notes = append(notes, fmt.Sprintf("%s: %d %s whose rows are not whole %d-value blocks are stored as %s instead of %s, %s: %s",
			ft, len(named[ch]), what, values, ch.to, ch.from, as, firstAndCount(named[ch])))
	}
	return notes
}

// ImportanceNotes says what importance matrix im did in a file of type ft
// of model m: how many of the quantized weights it weighed, which it had
// no entry for (quantized without, as llama-quantize does: llama-imatrix
// leaves out the LM head and never sees the embeddings as a product), and
// entries that name no weight of m.
func ImportanceNotes(m *nn.Model, opt Options) ([]string, error) {
	im := opt.Importance
	if im == nil {
		return nil, nil
	}
	planned, err := planFile(m, opt)
	if err != nil {
		return nil, err
	}
	var weighted, without []string
	names := map[string]bool{}
	for _, t := range planned {
		names[t.name] = true
		if !takesImportance(t.typ) {
			continue
		}
		if _, ok := im.Entries[t.name]; ok {
			weighted = append(weighted, t.name)
		} else {
			without = append(without, fmt.Sprintf("%s (%s)", t.name, t.typ))
		}
	}
	from := ""
	if len(im.Datasets) > 0 {
		from = ", from " + strings.Join(im.Datasets, ", ")
	}
	chunks := ""
	if im.ChunkCount > 0 {
		chunks = fmt.Sprintf(", %d chunks", im.ChunkCount)
		if im.ChunkSize > 0 {
			chunks += fmt.Sprintf(" of %d tokens", im.ChunkSize)
		}
	}
	source := "importance matrix"
	if im.Path != "" {
		source += " " + im.Path
	}
	notes := []string{fmt.Sprintf("%s (%d entries%s%s) weighed %d of the %d weights quantized in types that use it", source, len(im.Entries), chunks, from, len(weighted), len(weighted)+len(without))}
	if len(without) > 0 {
		notes = append(notes, fmt.Sprintf("quantized without importance data (the matrix has no entry for them, as llama-imatrix collects none for the LM head or the embeddings): %s", firstAndCount(without)))
	}
	var stray []string
	for _, n := range im.Names() {
		if !names[n] {
			stray = append(stray, n)
		}
	}
	if len(stray) > 0 {
		notes = append(notes, fmt.Sprintf("%d importance matrix entries name no weight of this model: %s", len(stray), firstAndCount(stray)))
	}
	return notes, nil
}

// firstAndCount is "a" for one name, "a and N more" for more.
func firstAndCount(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return fmt.Sprintf("%s and %d more", names[0], len(names)-1)
}

// isMix reports whether f is one of llama-quantize's mixes: the 32-value
// Q4_0, Q4_1, Q5_0 and Q5_1, the k-quant ones and IQ4_NL/IQ4_XS, whose
// tensors take types by role and layer. (Q8_0 is one too, but gives every
// tensor Q8_0, as the uniform type does.)
func (f FileType) isMix() bool {
	switch f {
	case FileQ4_0, FileQ4_1, FileQ5_0, FileQ5_1, FileQ2_K, FileQ3_K_S, FileQ3_K_M, FileQ3_K_L, FileQ4_K_S, FileQ4_K_M, FileQ5_K_S, FileQ5_K_M, FileQ6_K, FileIQ4_NL, FileIQ4_XS:
		return true
	}
	return false
}

// tensorType is the type of tensor name (llama.cpp's name) of shape, and
// the type the file's mix wanted for it: the two differ where the rows do
// not fill whole blocks of the wanted type (fallbacks, which TypeNotes
// reports).
func (p typePlan) tensorType(name string, shape []int) (typ, wanted TensorType) {
	if len(shape) < 2 {
		return F32, F32
	}
	// The user's type for a tensor named by its role is taken as it is,
	// as llama-quantize takes it (checkOverrides refused rows it cannot
	// hold).
	switch {
	case name == "token_embd.weight" && p.embedding != nil:
		return *p.embedding, *p.embedding
	case name == "output.weight" && p.output != nil:
		return *p.output, *p.output
	}
	wanted = p.base
	switch {
	case p.file.isMix():
		wanted = p.mixType(name)
	case p.tied && name == "token_embd.weight" && p.output != nil:
		wanted = *p.output // the head's type, for the table that is the head too
	}
	cols := shape[len(shape)-1]
	typ = wanted
	if v, _, _ := typ.blockInfo(); cols%v != 0 {
		switch {
		case !p.file.isMix():
		case wanted == Q6_K && (name == "output.weight" || p.tied && name == "token_embd.weight"):
			typ = Q8_0 // llama.cpp's choice for a head of other widths
		default:
			if fb, ok := fallback[wanted]; ok {
				typ = fb
			} // a 32-value type has no smaller block: typeFor makes it F16
		}
	}
	return typeFor(shape, typ), wanted
}

// fallback is llama.cpp's type for rows that are not whole blocks of a
// 256-value type (tensor_type_fallback).
var fallback = map[TensorType]TensorType{Q2_K: Q4_0, Q3_K: Q4_0, Q4_K: Q5_0, Q5_K: Q5_1, Q6_K: Q8_0, IQ4_XS: IQ4_NL}

// mixType is the type a mix gives the 2-D tensor name.
func (p typePlan) mixType(name string) TensorType {
	layer := layerOf(name)
	attnV := strings.HasSuffix(name, ".attn_v.weight") || strings.HasSuffix(name, ".attn_qkv.weight")
	ffnDown := strings.HasSuffix(name, ".ffn_down.weight")
	attnOut := strings.HasSuffix(name, ".attn_output.weight")
	switch {
	case (name == "output.weight" || p.tied && name == "token_embd.weight") && p.output != nil:
		// Tied embeddings take --output-tensor-type here, in the mix,
		// so that rows it cannot hold fall back as the mix's would.
		return *p.output
	case name == "output.weight" || p.tied && name == "token_embd.weight":
		return Q6_K
	case (p.file == FileQ4_K_M || p.file == FileQ5_K_M) && (attnV || ffnDown) && useMoreBits(layer, p.layers):
		return Q6_K
	case p.file == FileQ4_K_S && (attnV && layer < 4 || ffnDown && layer < p.layers/8):
		return Q5_K
	case p.file == FileQ3_K_M && (attnV && layer < 2 || ffnDown && layer < p.layers/16):
		return Q5_K
	case p.file == FileQ3_K_M && (attnV || ffnDown || attnOut):
		return Q4_K
	case p.file == FileQ3_K_L && (attnV || ffnDown || attnOut):
		return Q5_K
	case p.file == FileQ2_K && attnV && p.gqa >= 4:
		return Q4_K
	case p.file == FileQ2_K && (attnV || ffnDown || attnOut):
		return Q3_K
	case (p.file == FileIQ4_NL || p.file == FileIQ4_XS) && attnV && p.gqa >= 4:
		return Q5_K
	case (p.file == FileIQ4_NL || p.file == FileIQ4_XS) && ffnDown && layer < p.layers/8 && !p.imatrix:
		// Only without a matrix: llama.cpp trusts an imatrix to keep the
		// first ffn_down layers in IQ4.
		return Q5_K
	case (p.file == FileQ4_0 || p.file == FileQ5_0) && ffnDown && layer < p.layers/8 && p.imatrix:
		// Only with a matrix: llama.cpp's guard against the first
		// ffn_down layers going astray when the weighting pulls a
		// symmetric type's scale; the minimum of Q4_1/Q5_1 holds them.
		return map[FileType]TensorType{FileQ4_0: Q4_1, FileQ5_0: Q5_1}[p.file]
	}
	return p.base
}

// useMoreBits is llama.cpp's choice of the layers whose attn_v and
// ffn_down Q4_K_M and Q5_K_M store in Q6_K.
func useMoreBits(layer, layers int) bool {
	return layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2
}

// layerOf is N in "blk.N.…" (−1 for other names).
func layerOf(name string) int {
	var n int
	if _, err := fmt.Sscanf(name, "blk.%d.", &n); err != nil {
		return -1
	}
	return n
}
