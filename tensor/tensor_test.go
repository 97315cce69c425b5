package tensor

import (
	"strings"
	"testing"
)

func TestViews(t *testing.T) {
	b := CPUDefault()
	x := FromF32(b, []float32{0, 1, 2, 3, 4, 5}, 2, 3)
	tr := x.Transpose(0, 1)
	if tr.IsContiguous() {
		t.Fatal("transpose should be a strided view")
	}
	if got := tr.F32(); !equal(got, []float32{0, 3, 1, 4, 2, 5}) {
		t.Fatalf("transpose = %v", got)
	}
	if got := x.Narrow(1, 1, 2).F32(); !equal(got, []float32{1, 2, 4, 5}) {
		t.Fatalf("narrow = %v", got)
	}
	if got := tr.Reshape(-1).F32(); !equal(got, []float32{0, 3, 1, 4, 2, 5}) {
		t.Fatalf("reshape of a strided view = %v", got)
	}
	y := Add(x, FromF32(b, []float32{10, 20, 30}, 3))
	if got := y.F32(); !equal(got, []float32{10, 21, 32, 13, 24, 35}) {
		t.Fatalf("broadcast add = %v", got)
	}
	if got := SumTo(y, Shape{3}).F32(); !equal(got, []float32{23, 45, 67}) {
		t.Fatalf("SumTo = %v", got)
	}
	c := Concat(0, x, x.Narrow(0, 0, 1))
	if got := c.F32(); !equal(got, []float32{0, 1, 2, 3, 4, 5, 0, 1, 2}) {
		t.Fatalf("concat = %v", got)
	}
	// Writing through a view reaches the storage.
	x.Narrow(1, 2, 1).Fill(-1)
	if got := x.F32(); !equal(got, []float32{0, 1, -1, 3, 4, -1}) {
		t.Fatalf("fill through view = %v", got)
	}
}

func TestShapeErrorsAreCaught(t *testing.T) {
	b := CPUDefault()
	err := Catch(func() { Add(Zeros(b, F32, 2, 3), Zeros(b, F32, 4)) })
	if err == nil || !strings.Contains(err.Error(), "do not broadcast") {
		t.Fatalf("broadcast mismatch: %v", err)
	}
	err = Catch(func() { Zeros(b, F32, 2, 3).Reshape(4, 2) })
	if err == nil || !strings.Contains(err.Error(), "Reshape") {
		t.Fatalf("bad reshape: %v", err)
	}
	err = Catch(func() { MatMul(Zeros(b, F32, 2, 3), Zeros(b, F32, 2, 3), false, false) })
	if err == nil {
		t.Fatal("matmul of mismatched inner dims did not fail")
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
