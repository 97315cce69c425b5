package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// handFile builds, byte by byte from the GGUF v3 layout, a file with one
// string and one uint32 pair and two F32 tensors ([2,3] and [5]).
func handFile() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	u32 := func(v uint32) { binary.Write(&b, le, v) }
	u64 := func(v uint64) { binary.Write(&b, le, v) }
	str := func(s string) { u64(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	u32(3)
	u64(2) // tensors
	u64(3) // pairs
	str("general.architecture")
	u32(8)
	str("llama")
	str("general.alignment")
	u32(4)
	u32(32)
	str("x.list")
	u32(9)
	u32(5) // int32 elements
	u64(2)
	u32(uint32(0xffffffff)) // -1
	u32(7)
	// tensor infos: dims reversed (ne[0] = row length)
	str("a")
	u32(2)
	u64(3)
	u64(2)
	u32(0)
	u64(0)
	str("b")
	u32(1)
	u64(5)
	u32(0)
	u64(32) // a's 24 bytes padded to 32
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	for i := 0; i < 6; i++ {
		binary.Write(&b, le, float32(i))
	}
	b.Write(make([]byte, 8))
	for i := 0; i < 5; i++ {
		binary.Write(&b, le, float32(10+i))
	}
	b.Write(make([]byte, 12))
	return b.Bytes()
}

func TestBuilderMatchesHandWrittenFile(t *testing.T) {
	bld := NewBuilder("llama")
	bld.Set("x.list", []int32{-1, 7})
	if err := bld.AddTensor("a", []int{2, 3}, F32, []float32{0, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if err := bld.AddTensor("b", []int{5}, F32, []float32{10, 11, 12, 13, 14}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := bld.Write(&got); err != nil {
		t.Fatal(err)
	}
	want := handFile()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("builder wrote %d bytes, the hand-built file has %d; first difference at %d", got.Len(), len(want), firstDiff(got.Bytes(), want))
	}
	path := filepath.Join(t.TempDir(), "hand.gguf")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if arch, _ := f.String("general.architecture"); arch != "llama" {
		t.Fatalf("architecture %q", arch)
	}
	if v, _ := f.Get("x.list"); !reflect.DeepEqual(v, []int32{-1, 7}) {
		t.Fatalf("x.list = %#v", v)
	}
	a, _ := f.Tensor("a")
	if !reflect.DeepEqual(a.Shape(), []int{2, 3}) || !reflect.DeepEqual(a.Dims, []uint64{3, 2}) {
		t.Fatalf("a: shape %v dims %v", a.Shape(), a.Dims)
	}
	vb, err := f.Float32("b")
	if err != nil || !reflect.DeepEqual(vb, []float32{10, 11, 12, 13, 14}) {
		t.Fatalf("b = %v, %v", vb, err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestMetadataRoundTrip(t *testing.T) {
	values := []KV{
		{"u8", uint8(200)}, {"i8", int8(-100)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4e9)}, {"i32", int32(-2e9)}, {"f32", float32(1.5e-5)}, {"bool", true},
		{"str", "héllo\x00 world"}, {"u64", uint64(1 << 60)}, {"i64", int64(-1 << 60)}, {"f64", math.Pi},
		{"strs", []string{"a", "", "Ġthe"}}, {"f32s", []float32{1, -2}}, {"bools", []bool{true, false}},
		{"u8s", []uint8{1, 2, 3}}, {"i64s", []int64{-5}}, {"empty", []uint32{}},
	}
	b := NewBuilder("test")
	for _, kv := range values {
		b.Set(kv.Key, kv.Value)
	}
	b.Set("u8", uint8(201)) // replacing keeps the position
	values[0].Value = uint8(201)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Metadata) != len(values)+2 {
		t.Fatalf("%d pairs, want %d", len(f.Metadata), len(values)+2)
	}
	for i, kv := range values {
		got := f.Metadata[i+2]
		if got.Key != kv.Key || !reflect.DeepEqual(got.Value, kv.Value) {
			t.Errorf("pair %d: %q = %#v, want %q = %#v", i, got.Key, got.Value, kv.Key, kv.Value)
		}
	}
	if len(f.Tensors) != 0 || f.DataStart%32 != 0 {
		t.Fatalf("tensors %d, data start %d", len(f.Tensors), f.DataStart)
	}
}

// TestAlignment checks every tensor's offset and the data start against
// the alignment, for the default and a larger one, with sizes that need
// padding (Q4_0 rows of 18-byte blocks).
func TestAlignment(t *testing.T) {
	for _, align := range []int{32, 64, 256} {
		b := NewBuilder("test")
		if err := b.SetAlignment(align); err != nil {
			t.Fatal(err)
		}
		b.Set("pad.me", "odd length string")
		x := make([]float32, 3*32)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		for _, typ := range []TensorType{Q4_0, F16, Q8_0, F32, BF16} {
			if err := b.AddTensor("t."+typ.String(), []int{3, 32}, typ, x); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "a.gguf")
		if err := b.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		f, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if f.Alignment != align || f.DataStart%int64(align) != 0 {
			t.Fatalf("align %d: file says %d, data starts at %d", align, f.Alignment, f.DataStart)
		}
		if st.Size()%int64(align) != 0 {
			t.Fatalf("align %d: file size %d is not padded", align, st.Size())
		}
		if got := st.Size() - f.DataStart; got != b.DataSize() {
			t.Fatalf("align %d: the data takes %d bytes, DataSize says %d", align, got, b.DataSize())
		}
		var end uint64
		for _, ti := range f.Tensors {
			if ti.Offset%uint64(align) != 0 || ti.Offset < end {
				t.Fatalf("align %d: %s at offset %d (previous ends at %d)", align, ti.Name, ti.Offset, end)
			}
			end = ti.Offset + uint64(ti.Size)
			got, err := f.Float32(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			// The block tests pin Encode/Decode; here the bytes must come
			// back from the right offset.
			raw, _ := Encode(ti.Type, x)
			want, _ := Decode(ti.Type, raw, len(x))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("align %d: %s values differ", align, ti.Name)
			}
		}
		f.Close()
	}
	if err := NewBuilder("x").SetAlignment(48); err == nil {
		t.Fatal("alignment 48 accepted")
	}
}

func TestBuilderErrors(t *testing.T) {
	b := NewBuilder("x")
	if err := b.AddTensor("q", []int{2, 16}, Q8_0, make([]float32, 32)); err == nil {
		t.Error("Q8_0 rows of 16: no error")
	}
	if err := b.AddTensor("s", []int{2, 3}, F32, make([]float32, 5)); err == nil {
		t.Error("5 values for [2,3]: no error")
	}
	if err := b.AddTensor("ok", []int{2}, F32, make([]float32, 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("ok", []int{2}, F32, make([]float32, 2)); err == nil {
		t.Error("duplicate tensor: no error")
	}
	b.Set("bad", struct{}{})
	if err := b.Write(&bytes.Buffer{}); err == nil {
		t.Error("metadata of an unsupported Go type: no error")
	}
}

// TestAddTensorFunc: tensors whose values come at Write give the bytes
// AddTensor gives, each values call running once; a values error, or
// values of the wrong count, ends Write with it.
func TestAddTensorFunc(t *testing.T) {
	x := make([]float32, 3*32)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	eager, lazy := NewBuilder("test"), NewBuilder("test")
	calls := 0
	for _, typ := range []TensorType{Q4_0, F16, Q8_0, F32, BF16} {
		if err := eager.AddTensor("t."+typ.String(), []int{3, 32}, typ, x); err != nil {
			t.Fatal(err)
		}
		if err := lazy.AddTensorFunc("t."+typ.String(), []int{3, 32}, typ, func() ([]float32, error) { calls++; return x, nil }); err != nil {
			t.Fatal(err)
		}
	}
	var a, b bytes.Buffer
	if err := eager.Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := lazy.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || calls != 5 {
		t.Errorf("AddTensorFunc wrote %d bytes (%d values calls), AddTensor %d; want the same bytes, 5 calls", b.Len(), calls, a.Len())
	}

	boom := errors.New("boom")
	for name, values := range map[string]func() ([]float32, error){
		"error":       func() ([]float32, error) { return nil, boom },
		"wrong count": func() ([]float32, error) { return x[:32], nil },
	} {
		bld := NewBuilder("test")
		if err := bld.AddTensorFunc("t", []int{3, 32}, F32, values); err != nil {
			t.Fatal(err)
		}
		err := bld.Write(&bytes.Buffer{})
		if err == nil || (name == "error" && !errors.Is(err, boom)) {
			t.Errorf("%s: Write gave %v", name, err)
		}
	}
	if err := NewBuilder("x").AddTensorFunc("q", []int{2, 16}, Q8_0, nil); err == nil {
		t.Error("AddTensorFunc: Q8_0 rows of 16: no error")
	}
}

// TestReadCorrupt: every truncation of a valid file, and a few targeted
// corruptions, give an error (never a panic).
func TestReadCorrupt(t *testing.T) {
	good := handFile()
	dir := t.TempDir()
	try := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Read(p)
		if err == nil {
			f.Close()
		}
		return err
	}
	// The data section of the last tensor starts at len-32; cutting there or
	// earlier must fail (the tensor would run past the end).
	for n := 0; n < len(good)-12; n++ {
		if err := try("cut.gguf", good[:n]); err == nil {
			t.Fatalf("file cut to %d of %d bytes: no error", n, len(good))
		}
	}
	mutate := func(off int, v []byte) []byte {
		c := bytes.Clone(good)
		copy(c[off:], v)
		return c
	}
	le := binary.LittleEndian
	cases := map[string][]byte{
		"magic":     mutate(0, []byte("GGUX")),
		"version":   mutate(4, le.AppendUint32(nil, 9)),
		"n_tensors": mutate(8, le.AppendUint64(nil, 1<<40)),
		"n_kv":      mutate(16, le.AppendUint64(nil, 1<<40)),
		"key_len":   mutate(24, le.AppendUint64(nil, 1<<50)),
		"val_type":  mutate(24+8+20, le.AppendUint32(nil, 77)),
		"alignment": mutate(24+8+20+4+8+5+8+17+4, le.AppendUint32(nil, 48)),
	}
	for name, data := range cases {
		err := try(name+".gguf", data)
		if err == nil {
			t.Errorf("%s corrupted: no error", name)
		} else if !errors.Is(err, ErrFormat) {
			t.Errorf("%s corrupted: %v does not wrap ErrFormat", name, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(handFile())
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := Read(p)
		if err != nil {
			return
		}
		defer g.Close()
		for _, ti := range g.Tensors {
			g.Float32(ti.Name)
		}
	})
}
