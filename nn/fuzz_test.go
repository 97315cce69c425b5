package nn

import (
	"math"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
)

// FuzzParseConfig: config.json comes with downloaded models. ParseConfig
// never panics on it, and a config it accepts passes Validate and implies
// tensor shapes whose sizes are positive and whose element counts fit an
// int, so no product of sizes wraps around into a small shape that a real
// tensor could match.
func FuzzParseConfig(f *testing.F) {
	testutil.AddFileSeeds(f, 8, "../testdata/*/config.json", "../testdata/fixtures/*/config.json", "../assets/models/tiny-base/config.json")
	// Large sizes, which byte mutations rarely reach from the seeds.
	f.Add([]byte(`{"model_type":"llama","vocab_size":64,"hidden_size":32,"intermediate_size":48,"num_hidden_layers":1,"num_attention_heads":8589934592,"num_key_value_heads":8589934592,"head_dim":4294967296}`))
	f.Add([]byte(`{"model_type":"phi3","vocab_size":4611686018427387904,"hidden_size":4,"intermediate_size":4611686018427387904,"num_hidden_layers":65536,"num_attention_heads":2,"head_dim":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate refuses: %v", err)
		}
		// Every layer has the same shapes: two stand for all of them.
		few := c
		few.NumLayers = min(c.NumLayers, 2)
		for name, shape := range few.expectedShapes() {
			n := 1
			for _, d := range shape {
				if d <= 0 || n > math.MaxInt/d {
					t.Fatalf("tensor %q: shape %v overflows or is empty (config %+v)", name, shape, c)
				}
				n *= d
			}
		}
	})
}
