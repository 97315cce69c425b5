package lora

import (
	"testing"

	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
)

// FuzzParseConfig: adapter_config.json comes with downloaded adapters. No
// file, however broken, panics while it is parsed or while an adapter it
// describes is made on the fixture model; what ParseConfig accepts
// passes Validate.
func FuzzParseConfig(f *testing.F) {
	testutil.AddFileSeeds(f, 4, "../testdata/fixtures/*/adapter_*/adapter_config.json")
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate refuses: %v", err)
		}
		if c.R > 64 {
			return // New would make large tensors: its shape checks are what matter, and they do not depend on r
		}
		_, _ = New(m, c, "fuzz", 1)
	})
}
