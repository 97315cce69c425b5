package ptxsim

import (
	"encoding/binary"
	"sort"
	"strings"
	"testing"
	"unsafe"
)

// testMem is a Memory of Go buffers, 256-byte aligned like the driver's.
type testMem struct {
	bufs []testBuf
}

type testBuf struct {
	base uint64
	mem  []byte
}

func (m *testMem) alloc(n int) (uint64, []byte) {
	raw := make([]byte, n+256)
	off := (256 - uintptr(unsafe.Pointer(&raw[0]))%256) % 256
	b := raw[off : off+uintptr(n) : off+uintptr(n)]
	base := uint64(uintptr(unsafe.Pointer(&b[0])))
	m.bufs = append(m.bufs, testBuf{base, b})
	sort.Slice(m.bufs, func(i, j int) bool { return m.bufs[i].base < m.bufs[j].base })
	return base, b
}

func (m *testMem) Find(addr uint64) (uint64, []byte, bool) {
	for _, b := range m.bufs {
		if addr-b.base < uint64(len(b.mem)) {
			return b.base, b.mem, true
		}
	}
	return 0, nil, false
}

func u64s(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

func putU64s(b []byte, v []uint64) {
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
}

func ptrArg(p uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, p)
	return b
}

const ptxHeader = ".version 7.8\n.target sm_80\n.address_size 64\n"

// kernel loads PTX source (with the header prepended) and decodes name.
func kernel(t testing.TB, src, name string) *Kernel {
	t.Helper()
	m, err := Load("test.ptx", ptxHeader+src)
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Kernel(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// opKernel wraps body in a kernel where thread i reads three 64-bit inputs
// in[3i..3i+2] into %x %y %z and writes %out to out[i]. The body also sees
// the inputs' low halves as %a %b %c (b32), %fa %fb %fc (f32), %ha %hb %hc
// (b16), and as f64 %da %db %dc.
func opKernel(body string) string {
	return `.visible .entry op(.param .u64 in, .param .u64 out)
{
	.reg .pred %p<8>;
	.reg .pred %q;
	.reg .b64 %x, %y, %z, %out, %rd<8>;
	.reg .b32 %a, %b, %c, %r<8>;
	.reg .f32 %fa, %fb, %fc, %f<8>;
	.reg .f64 %da, %db, %dc, %fd<8>;
	.reg .b16 %ha, %hb, %hc, %rs<8>;
	ld.param.u64 %rd1, [in];
	ld.param.u64 %rd2, [out];
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd3, %r1, 24;
	add.s64 %rd4, %rd1, %rd3;
	ld.global.u64 %x, [%rd4];
	ld.global.u64 %y, [%rd4+8];
	ld.global.u64 %z, [%rd4+16];
	cvt.u32.u64 %a, %x;
	cvt.u32.u64 %b, %y;
	cvt.u32.u64 %c, %z;
	mov.b32 %fa, %a;
	mov.b32 %fb, %b;
	mov.b32 %fc, %c;
	cvt.u16.u64 %ha, %x;
	cvt.u16.u64 %hb, %y;
	cvt.u16.u64 %hc, %z;
	mov.b64 %da, %x;
	mov.b64 %db, %y;
	mov.b64 %dc, %z;
	mov.u64 %out, 0;
` + body + `
	mul.wide.u32 %rd5, %r1, 8;
	add.s64 %rd6, %rd2, %rd5;
	st.global.u64 [%rd6], %out;
	ret;
}
`
}

// opCase is one input triple and the expected %out.
type opCase struct {
	x, y, z uint64
	want    uint64
}

// runOp runs body on every case (one thread each) and checks %out.
func runOp(t *testing.T, name, body string, cases []opCase) {
	t.Helper()
	k := kernel(t, opKernel(body), "op")
	mem := &testMem{}
	inP, in := mem.alloc(24 * len(cases))
	outP, out := mem.alloc(8 * len(cases))
	for i, c := range cases {
		putU64s(in[24*i:], []uint64{c.x, c.y, c.z})
	}
	err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{len(cases), 1, 1},
		Params: [][]byte{ptrArg(inP), ptrArg(outP)}, Memory: mem})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	got := u64s(out)
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s (%s) on x=%#x y=%#x z=%#x: got %#x, want %#x", name, strings.TrimSpace(body), c.x, c.y, c.z, got[i], c.want)
		}
	}
}
