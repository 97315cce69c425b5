package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tensorInfoAt returns the position in a GGUF file's header of the named
// tensor's type and offset fields, found after the name (with its length
// prefix, which must occur once) and the dimensions.
func tensorInfoAt(t *testing.T, file []byte, name string) (typeAt, offsetAt int) {
	t.Helper()
	key := append(binary.LittleEndian.AppendUint64(nil, uint64(len(name))), name...)
	if n := bytes.Count(file, key); n != 1 {
		t.Fatalf("tensor name %q occurs %d times in the file", name, n)
	}
	p := bytes.Index(file, key) + len(key)
	nd := int(binary.LittleEndian.Uint32(file[p:]))
	typeAt = p + 4 + 8*nd
	return typeAt, typeAt + 4
}

// TestReadRefusesBadExtents: an offset that wraps round (2^64 - DataStart
// would point at the file's first byte once added to DataStart), one past
// the end, and tensors sharing bytes, are refused with an error naming the
// file and the tensor; tensors of types this package cannot size are
// checked too.
func TestReadRefusesBadExtents(t *testing.T) {
	good := handFile() // a: 24 bytes at 0, b: 20 bytes at 32; alignment 32
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name+".gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g, err := Read(write("good", good))
	if err != nil {
		t.Fatal(err)
	}
	dataStart := uint64(g.DataStart)
	g.Close()
	le := binary.LittleEndian
	aType, aOff := tensorInfoAt(t, good, "a")
	bType, bOff := tensorInfoAt(t, good, "b")
	const alignAt = 24 + 8 + 20 + 4 + 8 + 5 + 8 + 17 + 4 // general.alignment's value
	patch := func(fields map[int][]byte) []byte {
		c := bytes.Clone(good)
		for at, v := range fields {
			copy(c[at:], v)
		}
		return c
	}
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return le.AppendUint64(nil, v) }
	const unknownType = 200 // no GGML type: Size is -1
	cases := []struct {
		name string
		data []byte
		want string // in the error, after the file name
	}{
		{"wrap_a", patch(map[int][]byte{aOff: u64(-dataStart)}), fmt.Sprintf(`tensor "a" (24 bytes at offset %d) runs past the end of the 64-byte data section`, -dataStart)},
		{"wrap_b", patch(map[int][]byte{bOff: u64(-dataStart + 32)}), fmt.Sprintf(`tensor "b" (20 bytes at offset %d) runs past the end`, -dataStart+32)},
		{"past_end", patch(map[int][]byte{bOff: u64(64)}), `tensor "b" (20 bytes at offset 64) runs past the end`},
		{"huge", patch(map[int][]byte{bOff: u64(1 << 63)}), `tensor "b"`},
		{"same_offset", patch(map[int][]byte{bOff: u64(0)}), `tensor "b" at offset 0 overlaps tensor "a", bytes [0, 24)`},
		{"partial_overlap", patch(map[int][]byte{alignAt: u32(8), bOff: u64(16)}), `tensor "b" at offset 16 overlaps tensor "a", bytes [0, 24)`},
		{"unknown_type_wrap", patch(map[int][]byte{bType: u32(unknownType), bOff: u64(-dataStart)}), fmt.Sprintf(`tensor "b": offset %d lies outside the 64-byte data section`, -dataStart)},
		{"unknown_type_at_end", patch(map[int][]byte{bType: u32(unknownType), bOff: u64(64)}), `tensor "b": offset 64 lies outside`},
		{"unknown_type_overlap", patch(map[int][]byte{aType: u32(unknownType), bOff: u64(0)}), `overlaps tensor`},
	}
	for _, c := range cases {
		p := write(c.name, c.data)
		g, err := Read(p)
		if err == nil {
			g.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, ErrFormat) || !strings.HasPrefix(err.Error(), "gguf: "+p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an ErrFormat naming %s and saying %s", c.name, err, p, c.want)
		}
	}
	// Unaligned offsets stay refused; an unknown type inside the data, on
	// its own bytes, stays readable as a directory entry.
	if _, err := Read(write("unaligned", patch(map[int][]byte{bOff: u64(40)}))); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "alignment") {
		t.Errorf("unaligned offset: %v", err)
	}
	g, err = Read(write("unknown_ok", patch(map[int][]byte{bType: u32(unknownType)})))
	if err != nil {
		t.Fatalf("a tensor of an unknown type at a good offset: %v", err)
	}
	if _, err := g.Raw("b"); err == nil {
		t.Error("a tensor of an unknown type was read")
	}
	g.Close()
}

// TestReadImatrixRefusesWrappedOffset: an imatrix whose tensor offset wraps
// round to the header is refused for the offset, naming the file and the
// tensor, not read as garbage importances (or as a NaN value).
func TestReadImatrixRefusesWrappedOffset(t *testing.T) {
	im := &Imatrix{Entries: map[string]ImatrixEntry{
		"blk.0.attn_q.weight": {SumSquares: make([]float32, 256), Counts: []float32{4}},
		"blk.0.ffn_up.weight": {SumSquares: make([]float32, 256), Counts: []float32{4}},
	}}
	dir := t.TempDir()
	path := filepath.Join(dir, "good.gguf")
	if err := WriteImatrix(path, im); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	dataStart := uint64(g.DataStart)
	g.Close()
	for _, name := range []string{"blk.0.attn_q.weight.in_sum2", "blk.0.ffn_up.weight.counts"} {
		bad := bytes.Clone(good)
		_, off := tensorInfoAt(t, bad, name)
		binary.LittleEndian.PutUint64(bad[off:], -dataStart)
		p := filepath.Join(dir, "bad.gguf")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadImatrix(p)
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), p) ||
			!strings.Contains(err.Error(), `tensor "`+name+`"`) || !strings.Contains(err.Error(), "runs past the end") {
			t.Errorf("%s at offset 2^64-%d: %v\nwant an ErrFormat naming %s and the tensor's offset", name, dataStart, err, p)
		}
	}
}
