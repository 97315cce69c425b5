package safetensors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// emptyTensors is a header of n zero-size F32 tensors, named as a large
// mixture-of-experts checkpoint names them, with metadata before them.
func emptyTensors(n int) string {
	b := make([]byte, 0, 100*n)
	b = append(b, `{"__metadata__":{"format":"pt"}`...)
	for i := range n {
		b = append(b, `,"model.layers.`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `.mlp.experts.weight_scale":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`...)
	}
	return string(append(b, '}'))
}

// allocatedBy runs f and returns the bytes it allocated on the heap.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestParseHeaderRefusesTooManyTensors: one tensor past maxTensors is
// refused from the first scan, without decoding an entry (the file is 50
// MB; before the bound such a header was decoded whole, at 3.7 kB of
// garbage per entry, and accepted).
func TestParseHeaderRefusesTooManyTensors(t *testing.T) {
	file := rawFile(emptyTensors(maxTensors+1), nil)
	var err error
	n := allocatedBy(func() { _, err = parseHeader("many.safetensors", file) })
	checkErr(t, err, ErrCorrupt, []string{"many.safetensors", fmt.Sprintf("more than %d tensors", maxTensors)})
	if n > 1<<20 {
		t.Errorf("refusing %d tensors allocated %d bytes: the entries were decoded before the count was checked", maxTensors+1, n)
	}
}

// TestParseHeaderAtMaxTensors: a header of exactly maxTensors tensors
// parses, in memory a small multiple of its size (the encoding/json
// decoder took 40 times it).
func TestParseHeaderAtMaxTensors(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a 45 MB header")
	}
	file := rawFile(emptyTensors(maxTensors), nil)
	var h *header
	var err error
	n := allocatedBy(func() { h, err = parseHeader("max.safetensors", file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(h.names) != maxTensors || h.metadata["format"] != "pt" {
		t.Fatalf("%d tensors and metadata %v, want %d and format pt", len(h.names), h.metadata, maxTensors)
	}
	if limit := 4 * uint64(len(file)); n > limit {
		t.Errorf("parsing a %d-byte header of %d tensors allocated %d bytes, more than %d", len(file), maxTensors, n, limit)
	}
}

// TestParseHeaderRefusesHugeMetadata: a __metadata__ past
// maxMetadataBytes is refused from the first scan, before a string of it
// is decoded; one of exactly the limit parses.
func TestParseHeaderRefusesHugeMetadata(t *testing.T) {
	meta := func(n int) string { // n bytes of JSON: {"k":"xxx…"}
		return `{"k":"` + strings.Repeat("x", n-8) + `"}`
	}
	tensor := `"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}`
	for _, c := range []struct {
		name string
		json string
	}{
		{"one string", meta(maxMetadataBytes + 1)},
		{"many keys", `{` + strings.Repeat(`"k":"v",`, maxMetadataBytes/8) + `"end":""}`},
	} {
		file := rawFile(`{"__metadata__":`+c.json+`,`+tensor+`}`, []byte{1})
		var err error
		n := allocatedBy(func() { _, err = parseHeader("meta.safetensors", file) })
		checkErr(t, err, ErrCorrupt, []string{"meta.safetensors", "__metadata__", fmt.Sprintf("more than the %d-byte limit", maxMetadataBytes)})
		if n > 1<<20 {
			t.Errorf("%s: refusing the metadata allocated %d bytes: it was decoded first", c.name, n)
		}
	}
	h, err := parseHeader("meta.safetensors", rawFile(`{`+tensor+`,"__metadata__":`+meta(maxMetadataBytes)+`}`, []byte{1}))
	if err != nil {
		t.Fatalf("metadata of exactly %d bytes: %v", maxMetadataBytes, err)
	}
	if len(h.metadata["k"]) != maxMetadataBytes-8 {
		t.Errorf("metadata value of %d bytes, want %d", len(h.metadata["k"]), maxMetadataBytes-8)
	}
}

// TestParseHeaderEntrySyntax: what the header's own scanner refuses or
// accepts beyond TestParseHeaderRejects, where it could differ from a
// general JSON decoder.
func TestParseHeaderEntrySyntax(t *testing.T) {
	reject := []struct {
		name, header string
		wantAll      []string
	}{
		{"field twice", `{"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []string{`tensor "w"`, `field "dtype" appears twice`}},
		{"number in a string", `{"w":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}`, []string{`tensor "w"`, `value 0 is "1", want an integer`}},
		{"null in shape", `{"w":{"dtype":"U8","shape":[null],"data_offsets":[0,1]}}`, []string{`value 0 is null`}},
		{"exponent", `{"w":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}`, []string{`value 0 is 1e0, want an integer`}},
		{"leading zero", `{"w":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}`, []string{"not a JSON object"}},
		{"trailing comma", `{"w":{"dtype":"U8","shape":[1,],"data_offsets":[0,1]}}`, []string{"not a JSON object"}},
		{"trailing comma in object", `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},}`, []string{"not a JSON object"}},
		{"raw control character", "{\"w\t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", []string{"not a JSON object", "control character"}},
		{"bad escape", `{"w\x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []string{"not a JSON object", "escape"}},
		{"deep nesting", `{"w":` + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + `}`, []string{"not a JSON object", "nested deeper"}},
		{"NUL after the object", "{}\x00", []string{"after the object"}},
		{"metadata twice", `{"__metadata__":{},"__metadata__":{}}`, []string{`duplicate key "__metadata__"`}},
		{"escaped metadata twice", `{"__metadata__":{},"\u005f_metadata__":{}}`, []string{`duplicate key "__metadata__"`}},
	}
	for _, c := range reject {
		_, err := parseHeader("x.safetensors", rawFile(c.header, []byte{1}))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v does not wrap ErrCorrupt", c.name, err)
		}
		for _, s := range c.wantAll {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v does not say %q", c.name, err, s)
			}
		}
	}
	// White space anywhere JSON allows it, escapes in names, field names
	// and the dtype, "-0" (an integer to ParseInt, as before), an escaped
	// __metadata__ key.
	h, err := parseHeader("x.safetensors", rawFile("{\r\n\"a\\u00e9\\\"\" : { \"d\\u0074ype\" : \"U\\u0038\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ -0 , 1 ] } ,"+
		` "\u005f_metadata__" : { "k" : "v\n\u00e9" } , "z":{"dtype":"F32","shape":[],"data_offsets":[1,5]} } `, []byte{1, 0, 0, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(h.names, ",") != "a\u00e9\",z" || h.entries["a\u00e9\""].dtype != U8 || h.metadata["k"] != "v\n\u00e9" || len(h.entries["z"].shape) != 0 {
		t.Errorf("names %q, metadata %q", h.names, h.metadata)
	}
}

// TestWriteRefusesWhatOpenRefuses: Write does not make a file that Open
// would refuse for its tensor count or its metadata's size.
func TestWriteRefusesWhatOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	many := make([]Tensor, maxTensors+1)
	for i := range many {
		many[i] = Tensor{Name: "t" + strconv.Itoa(i), DType: U8, Shape: []int{0}, Data: []byte{}}
	}
	path := filepath.Join(dir, "many.safetensors")
	if err := Write(path, many, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), strconv.Itoa(maxTensors+1)+" tensors") {
		t.Errorf("%d tensors: %v, want ErrInvalid", len(many), err)
	}
	meta := map[string]string{"k": strings.Repeat("x", maxMetadataBytes)}
	if err := Write(path, many[:1], meta); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("metadata of %d bytes: %v, want ErrInvalid", maxMetadataBytes, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused write left %s (%v)", path, err)
	}
	// Metadata at the limit is written and opens (a header of maxTensors
	// tensors is TestParseHeaderAtMaxTensors's).
	meta["k"] = strings.Repeat("x", maxMetadataBytes-8) // {"k":"…"}
	if err := Write(path, many[:1], meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Metadata()["k"]) != maxMetadataBytes-8 {
		t.Errorf("read back %d bytes of metadata", len(f.Metadata()["k"]))
	}
}
