package tensor

import (
	"strings"
	"testing"
)

// TestNF4NestedChecked: double-quantized scales whose lengths do not match
// the blocks are refused with the counts, never read out of range.
func TestNF4NestedChecked(t *testing.T) {
	good := func() NF4Data {
		// 300 elements in blocks of 64: 5 blocks, 2 nested blocks of 3.
		return NF4Data{Packed: make([]byte, 150), Absmax: make([]float32, 5), BlockSize: 64, Len: 300,
			Nested: &NF4Nested{QAbsmax: make([]uint8, 5), NestedAbsmax: make([]float32, 2), NestedCode: make([]float32, 256), NestedBlockSize: 3}}
	}
	if err := good().Check(); err != nil {
		t.Fatalf("consistent data refused: %v", err)
	}
	for name, spoil := range map[string]func(d *NF4Data){
		"codes":            func(d *NF4Data) { d.Nested.QAbsmax = d.Nested.QAbsmax[:4] },
		"nested scales":    func(d *NF4Data) { d.Nested.NestedAbsmax = d.Nested.NestedAbsmax[:1] },
		"code book":        func(d *NF4Data) { d.Nested.NestedCode = d.Nested.NestedCode[:255] },
		"nested blocksize": func(d *NF4Data) { d.Nested.NestedBlockSize = 0 },
	} {
		d := good()
		spoil(&d)
		err := Catch(func() { FromNF4(CPUDefault(), d, 300) })
		if err == nil || !strings.Contains(err.Error(), "double quantization of 5 blocks") {
			t.Errorf("%s: got %v, want the double quantization refused with its counts", name, err)
		}
	}
}
