package imatrix

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

var tinyBase = filepath.Join("..", "..", "assets", "models", "tiny-base")

func loadTiny(t testing.TB) *nn.Model {
	t.Helper()
	m, err := nn.Load(tinyBase, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randomChunks(n, size, vocab int) [][]int {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([][]int, n)
	for i := range out {
		out[i] = make([]int, size)
		for j := range out[i] {
			out[i][j] = r.IntN(vocab)
		}
	}
	return out
}

// TestChunks: whole chunks only, capped, each starting with BOS when asked.
func TestChunks(t *testing.T) {
	tokens := []int{1, 2, 3, 4, 5, 6, 7}
	c, err := Chunks(tokens, 3, 0, 0)
	if err != nil || len(c) != 2 || c[0][0] != 0 || c[0][1] != 2 || c[1][0] != 0 || c[1][2] != 6 {
		t.Fatalf("Chunks = %v, %v; want [[0 2 3] [0 5 6]]", c, err)
	}
	if tokens[0] != 1 || tokens[3] != 4 {
		t.Error("Chunks wrote into the caller's tokens")
	}
	if c, _ := Chunks(tokens, 3, -1, 1); len(c) != 1 || c[0][0] != 1 {
		t.Errorf("no BOS, at most 1: %v", c)
	}
	if _, err := Chunks(tokens, 8, 0, 0); err == nil || !strings.Contains(err.Error(), "7 tokens") {
		t.Errorf("a text shorter than a chunk: %v", err)
	}
}

func relRMS(got []float32, want []float64) float64 {
	var num, den float64
	for i := range got {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

// TestCollectSumsProjectionInputs: the sums of the first block's q, k and
// v are those of its normed input, computed here from the embeddings
// (float64 RMSNorm); projections that share an input have the same sums;
// the counts are the tokens; the last block's down projection saw the
// MLP's activations (a different width). Nothing is collected for the LM
// head, and the model's adapters are back in place afterwards.
func TestCollectSumsProjectionInputs(t *testing.T) {
	m := loadTiny(t)
	c := m.Config
	chunks := randomChunks(3, 24, c.VocabSize)
	a, err := lora.New(m, lora.NewConfig(4, 8, "q_proj", "down_proj"), "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	before := make(map[*nn.Linear]nn.Adapter)
	for _, l := range m.Linears() {
		before[l] = l.Adapter
	}
	var done []int
	im, err := Collect(context.Background(), m, chunks, Options{Dataset: "random", Progress: func(d, n int) { done = append(done, d) }})
	if err != nil {
		t.Fatal(err)
	}
	for l, ad := range before {
		if l.Adapter != ad {
			t.Fatalf("%s: adapter not restored", l.Name)
		}
	}
	if len(done) != 3 || done[2] != 3 {
		t.Errorf("progress %v, want 1, 2, 3", done)
	}
	if len(im.Entries) != 7*c.NumLayers || im.ChunkCount != 3 || im.ChunkSize != 24 || im.Datasets[0] != "random" {
		t.Fatalf("%d entries, %d chunks of %d, %v", len(im.Entries), im.ChunkCount, im.ChunkSize, im.Datasets)
	}
	if _, ok := im.Entries["output.weight"]; ok {
		t.Error("the LM head was collected")
	}
	// The normed input of block 0, per chunk, in float64.
	want := make([]float64, c.HiddenSize)
	norm := m.Layers[0].InputNorm.Value.F32()
	for _, ch := range chunks {
		ids := make([]int64, len(ch))
		for i, v := range ch {
			ids[i] = int64(v)
		}
		out, err := m.Forward(nil, nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, nn.ForwardOptions{KeepHidden: true, NoHead: true})
		if err != nil {
			t.Fatal(err)
		}
		h := out.Hidden[0].Value.F32()
		for r := 0; r < len(ch); r++ {
			row := h[r*c.HiddenSize : (r+1)*c.HiddenSize]
			var ms float64
			for _, v := range row {
				ms += float64(v) * float64(v)
			}
			inv := 1 / math.Sqrt(ms/float64(c.HiddenSize)+c.RMSNormEps)
			for j, v := range row {
				y := float64(v) * inv * float64(norm[j])
				want[j] += y * y
			}
		}
	}
	q := im.Entries["blk.0.attn_q.weight"]
	if q.Counts[0] != 72 {
		t.Errorf("count %v, want 72 tokens", q.Counts)
	}
	// The kernels round the norm in float32: 1e-5 relative covers it.
	if r := relRMS(q.SumSquares, want); r > 1e-5 {
		t.Errorf("blk.0.attn_q sums differ from the normed embeddings' by %.3g relative RMS (bound 1e-5)", r)
	}
	for _, pair := range [][2]string{{"attn_q", "attn_k"}, {"attn_q", "attn_v"}, {"ffn_gate", "ffn_up"}} {
		for l := range c.NumLayers {
			x := im.Entries[fmt.Sprintf("blk.%d.%s.weight", l, pair[0])].SumSquares
			y := im.Entries[fmt.Sprintf("blk.%d.%s.weight", l, pair[1])].SumSquares
			if !equal(x, y) {
				t.Fatalf("block %d: %s and %s read the same input but have other sums", l, pair[0], pair[1])
			}
		}
	}
	if n := len(im.Entries["blk.5.ffn_down.weight"].SumSquares); n != c.IntermediateSize {
		t.Errorf("ffn_down has %d columns, want %d", n, c.IntermediateSize)
	}
}

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestCollectIsTheMergedModels: with an adapter attached, the matrix is the
// merged model's (the adapter's output feeds the next projections), and
// far from the base's alone. The model holds float32 weights, so the
// merged ones differ from base + adapter only in how the products round:
// 1e-5 relative RMS bounds that (measured 9e-7).
func TestCollectIsTheMergedModels(t *testing.T) {
	m := loadTiny(t)
	chunks := randomChunks(2, 32, m.Config.VocabSize)
	base, err := Collect(context.Background(), m, chunks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lc := lora.NewConfig(8, 32, "q_proj", "v_proj", "o_proj", "up_proj", "down_proj")
	lc.InitLoraWeights = lora.InitLoraWeights{Bool: false} // B random: an update that is not zero
	a, err := lora.New(m, lc, "x", 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	adapted, err := Collect(context.Background(), m, chunks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lora.Detach(m)
	if err := a.Merge(m); err != nil {
		t.Fatal(err)
	}
	merged, err := Collect(context.Background(), m, chunks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var worstMerged, leastBase float64 = 0, math.Inf(1)
	for _, name := range []string{"blk.1.attn_q.weight", "blk.3.ffn_down.weight", "blk.5.attn_output.weight"} {
		m64 := widen(merged.Entries[name].SumSquares)
		worstMerged = max(worstMerged, relRMS(adapted.Entries[name].SumSquares, m64))
		leastBase = min(leastBase, relRMS(base.Entries[name].SumSquares, m64))
	}
	if worstMerged > 1e-5 || leastBase < 1e-2 {
		t.Errorf("adapter vs merged: %.3g relative RMS (bound 1e-5); base vs merged: %.3g (want more than 1e-2: the adapter must change the sums)", worstMerged, leastBase)
	}
	t.Logf("adapter vs merged %.3g, base vs merged %.3g relative RMS", worstMerged, leastBase)
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// TestCollectStops: a cancelled context stops between chunks, a token
// outside the vocabulary and chunks of other lengths are errors, and the
// adapters are restored on every one of those paths.
func TestCollectStops(t *testing.T) {
	m := loadTiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx, m, randomChunks(2, 8, 100), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	bad := randomChunks(2, 8, 100)
	bad[1][3] = m.Config.VocabSize
	if _, err := Collect(context.Background(), m, bad, Options{}); err == nil || !strings.Contains(err.Error(), "chunk 1, token 3") {
		t.Errorf("token outside the vocabulary: %v", err)
	}
	if _, err := Collect(context.Background(), m, [][]int{{1, 2}, {3}}, Options{}); err == nil {
		t.Error("chunks of other lengths were accepted")
	}
	for _, l := range m.Linears() {
		if l.Adapter != nil {
			t.Fatalf("%s: left with adapter %T", l.Name, l.Adapter)
		}
	}
}

// BenchmarkCollect is an importance matrix over 8 chunks of 512 tokens of
// tiny-base, as ftune imatrix computes one (each chunk one forward
// through the blocks).
func BenchmarkCollect(b *testing.B) {
	m := loadTiny(b)
	chunks := randomChunks(8, 512, m.Config.VocabSize)
	for b.Loop() {
		if _, err := Collect(context.Background(), m, chunks, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
