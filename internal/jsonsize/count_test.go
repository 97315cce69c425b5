package jsonsize

import "testing"

// TestCountValues: values and keys are counted, strings skipped whole
// with their escapes, and the offset of the value past the bound given.
func TestCountValues(t *testing.T) {
	tests := []struct {
		raw string
		n   int
	}{
		{``, 0},
		{`{}`, 1},
		{`{"a":1}`, 3},
		{`[0,0,0]`, 4},
		{` [ null , true,false ] `, 4},
		{`{"a":"[[[\"]]]{{,:","b":[1,-2.5e3,true,null,{},[]]}`, 11},
		{`{"a":"x\\\\","b":1}`, 5},    // a string ending in escaped backslashes
		{`{"a":"x\\\"]","b":1}`, 5},   // an escaped quote after a backslash
		{`{"a":"\u005c","b":[1]}`, 6}, // \u escapes count for nothing
		{`{"a":"unclosed`, 3},
		{`{"a":nul}`, 3}, // not JSON: counted all the same
	}
	for _, c := range tests {
		if _, over := CountValues([]byte(c.raw), c.n); over {
			t.Errorf("%s: over %d values", c.raw, c.n)
		}
		if c.n == 0 {
			continue
		}
		if _, over := CountValues([]byte(c.raw), c.n-1); !over {
			t.Errorf("%s: not over %d values", c.raw, c.n-1)
		}
	}
	if off, over := CountValues([]byte(`{"a":[0,1,2]}`), 4); !over || off != 8 {
		t.Errorf("the 5th value: offset %d, %v; want 8", off, over)
	}
}
