package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The structs cuBLASLt fills through pointers must have its sizes.
func TestLtStructSizes(t *testing.T) {
	if n := unsafe.Sizeof(ltAlgo{}); n != 64 {
		t.Errorf("cublasLtMatmulAlgo_t: %d bytes, want 64", n)
	}
	var h ltHeuristic
	if n := unsafe.Sizeof(h); n != 96 {
		t.Errorf("cublasLtMatmulHeuristicResult_t: %d bytes, want 96", n)
	}
	if o := unsafe.Offsetof(h.workspace); o != 64 {
		t.Errorf("workspaceSize at %d, want 64", o)
	}
	if o := unsafe.Offsetof(h.state); o != 72 {
		t.Errorf("state at %d, want 72", o)
	}
}

// Every binding's Go signature is one purego can call (it checks argument
// kinds and counts at registration; cublasLtMatmul has 16 arguments). The
// address is never called.
func TestLtSignatures(t *testing.T) {
	for _, s := range ltSymbols() {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", s.name, r)
				}
			}()
			// A fresh variable of the binding's type: the real
			// bindings stay as they are.
			purego.RegisterFunc(reflect.New(reflect.TypeOf(s.fn).Elem()).Interface(), 1)
		}()
	}
}

// mapRowMajor, checked without a GPU: the column-major product it
// describes, computed here element by element over the same buffers
// exactly as cuBLASLt defines it (stored matrices column-major, op applied
// per flag), equals ftune's row-major product, for each transpose, ragged
// sizes and padded leading dimensions.
func TestMapRowMajorSimulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {8, 2, 9}, {5, 11, 4}} {
			for _, pad := range []int{0, 3} {
				ta, tb := tr[0], tr[1]
				M, N, K := sz[0], sz[1], sz[2]
				name := fmt.Sprintf("%s/M%d_N%d_K%d_pad%d", transName(ta, tb), M, N, K, pad)
				rowsA, colsA := M, K
				if ta {
					rowsA, colsA = K, M
				}
				rowsB, colsB := K, N
				if tb {
					rowsB, colsB = N, K
				}
				lda, ldb, ldc := colsA+pad, colsB+pad, N+pad
				a, b := make([]float64, rowsA*lda), make([]float64, rowsB*ldb)
				for i := range a {
					a[i] = rng.NormFloat64()
				}
				for i := range b {
					b[i] = rng.NormFloat64()
				}
				// ftune's row-major reference.
				want := make([]float64, M*ldc)
				for i := 0; i < M; i++ {
					for j := 0; j < N; j++ {
						s := 0.0
						for k := 0; k < K; k++ {
							var av, bv float64
							if ta {
								av = a[k*lda+i]
							} else {
								av = a[i*lda+k]
							}
							if tb {
								bv = b[j*ldb+k]
							} else {
								bv = b[k*ldb+j]
							}
							s += av * bv
						}
						want[i*ldc+j] = s
					}
				}
				got := simulateColMajor(t, mapRowMajor(ta, tb, M, N, K, lda, ldb, ldc), b, a, len(want))
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
						t.Fatalf("%s: element %d: column-major %g, row-major %g", name, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// simulateColMajor computes D = op(A)·op(B) as cuBLASLt does for m: A and
// B stored column-major with the layouts m declares (A(r,c) at r + c·ld),
// D column-major [CRows, CCols] with leading dimension LDC.
func simulateColMajor(t *testing.T, m ltMapping, A, B []float64, n int) []float64 {
	t.Helper()
	opRows := func(rows, cols int, trans bool) (int, int) {
		if trans {
			return cols, rows
		}
		return rows, cols
	}
	ar, ac := opRows(m.ARows, m.ACols, m.TransA)
	br, bc := opRows(m.BRows, m.BCols, m.TransB)
	if ar != m.M || ac != m.K || br != m.K || bc != m.N || m.CRows != m.M || m.CCols != m.N {
		t.Fatalf("inconsistent mapping %+v: op(A) %dx%d, op(B) %dx%d", m, ar, ac, br, bc)
	}
	if m.LDA < max(m.ARows, 1) || m.LDB < max(m.BRows, 1) || m.LDC < max(m.CRows, 1) {
		t.Fatalf("leading dimension below the rows: %+v", m)
	}
	at := func(buf []float64, ld, r, c int) float64 { return buf[r+c*ld] }
	D := make([]float64, n)
	for i := 0; i < m.M; i++ {
		for j := 0; j < m.N; j++ {
			s := 0.0
			for k := 0; k < m.K; k++ {
				var av, bv float64
				if m.TransA {
					av = at(A, m.LDA, k, i)
				} else {
					av = at(A, m.LDA, i, k)
				}
				if m.TransB {
					bv = at(B, m.LDB, j, k)
				} else {
					bv = at(B, m.LDB, k, j)
				}
				s += av * bv
			}
			D[i+j*m.LDC] = s
		}
	}
	return D
}

// The override is the only candidate: no search behind the user's back.
func TestLtCandidates(t *testing.T) {
	if got := ltCandidates("/x/libcublasLt.so.12", ltNames, []string{"/usr/local/cuda/lib64"}, func(string) bool { return true }); len(got) != 1 || got[0] != "/x/libcublasLt.so.12" {
		t.Fatalf("override: %v", got)
	}
	got := ltCandidates("", ltNames, []string{"/a", "/b"}, func(p string) bool { return p == "/b/libcublasLt.so.12" })
	want := []string{"libcublasLt.so.13", "libcublasLt.so.12", "/b/libcublasLt.so.12"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A CUDA 12 driver cannot run cuBLASLt 13: only .so.12 is tried.
	if got := ltNamesFor(12080); fmt.Sprint(got) != "[libcublasLt.so.12]" {
		t.Errorf("CUDA 12.8 driver: %v", got)
	}
	if got := ltNamesFor(13000); len(got) != 2 {
		t.Errorf("CUDA 13.0 driver: %v", got)
	}
	// The pip wheel folders are searched under a virtual environment.
	venv := t.TempDir()
	dir := filepath.Join(venv, "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIRTUAL_ENV", venv)
	found := false
	for _, d := range ltSearchDirs() {
		found = found || d == dir
	}
	if !found {
		t.Fatalf("%s not among the search folders %v", dir, ltSearchDirs())
	}
}

// A named library that cannot be opened is an error naming the setting
// and the file, never a silent search elsewhere.
func TestLtOverrideRefused(t *testing.T) {
	_, _, err := loadLt("/nonexistent/libcublasLt.so.12", ltNames, []string{"/usr/local/cuda/lib64"})
	if err == nil || !strings.Contains(err.Error(), LibraryEnv+"=/nonexistent/libcublasLt.so.12 cannot be used") {
		t.Fatalf("got %v", err)
	}
	_, _, err = loadLt("", ltNames, []string{t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "set "+LibraryEnv) {
		t.Fatalf("got %v", err)
	}
}

func TestLtAlignment(t *testing.T) {
	for p, want := range map[Ptr]uint32{0: 256, 512: 256, 256 + 2: 2, 4096 + 16: 16, 7: 1} {
		if got := alignment(p); got != want {
			t.Errorf("alignment(%d) = %d, want %d", p, got, want)
		}
	}
}
