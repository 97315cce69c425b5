package ptxsim

import (
	"encoding/binary"
	"strings"
	"testing"
)

// tmaPTX: thread 0 initialises the barrier (INIT), arrives with expect_tx
// (EXPECT bytes) and loads one 64×8 bf16 box at (c0, c1) into buf+DST
// (EXTRA follows the copy); every thread passes bar.sync, waits on parity 0
// (WAIT), and copies 16 bytes of buf+DST to out[16·tid]. MAP loads the
// tensor map's address: a global pointer (pmap) by default.
const tmaPTX = `.visible .entry k(.param .align 64 .b8 tmap[128], .param .u64 pmap, .param .u64 pout, .param .u32 c0, .param .u32 c1)
{
	.reg .pred %p<4>;
	.reg .b32 %r<20>;
	.reg .b64 %rd<10>;
	.shared .align 1024 .b8 buf[2048];
	.shared .align 8 .b8 bar[8];
	MAP
	ld.param.u64 %rd2, [pout];
	ld.param.u32 %r3, [c0];
	ld.param.u32 %r4, [c1];
	mov.u32 %r1, %tid.x;
	mov.u32 %r5, bar;
	mov.u32 %r6, buf;
	add.u32 %r7, %r6, DST;
	setp.ne.u32 %p1, %r1, 0;
	@%p1 bra $L1;
	INIT
	mbarrier.arrive.expect_tx.shared::cta.b64 %rd3, [%r5], EXPECT;
	cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%r7], [%rd1, {%r3, %r4}], [%r5];
	EXTRA
$L1:
	bar.sync 0;
	WAIT
	shl.b32 %r9, %r1, 4;
	add.u32 %r10, %r7, %r9;
	ld.shared.v4.u32 {%r11, %r12, %r13, %r14}, [%r10];
	cvt.u64.u32 %rd4, %r9;
	add.u64 %rd5, %rd2, %rd4;
	st.global.v4.u32 [%rd5], {%r11, %r12, %r13, %r14};
	ret;
}
`

// tmaWait is the spin loop nvcc emits around try_wait (gemm_sm90.cu's
// mbar_wait).
const tmaWait = `$LW:
	{
	.reg .pred P1;
	mbarrier.try_wait.parity.shared::cta.b64 P1, [%r5], 0;
	selp.u32 %r8, 1, 0, P1;
	}
	setp.eq.u32 %p2, %r8, 0;
	@%p2 bra $LW;`

// tmaSrc fills tmaPTX's placeholders: the defaults, then the overrides
// (pairs of placeholder and text).
func tmaSrc(over ...string) string {
	set := map[string]string{"MAP": "ld.param.u64 %rd1, [pmap];", "DST": "0", "EXPECT": "1024", "EXTRA": "",
		"INIT": "mbarrier.init.shared::cta.b64 [%r5], 1;", "WAIT": tmaWait}
	for i := 0; i < len(over); i += 2 {
		set[over[i]] = over[i+1]
	}
	src := tmaPTX
	for _, k := range []string{"MAP", "DST", "EXPECT", "EXTRA", "INIT", "WAIT"} {
		src = strings.Replace(src, k, set[k], 1)
	}
	return src
}

// tmaMatrix is a 20×40 bf16 matrix (rows padded to 48 elements, a 96-byte
// stride) whose element (x, y) holds 1 + x + 64y, never zero, so the zero
// fill shows.
func tmaMatrix(mem *testMem) (TensorMap2D, func(x, y int) uint16) {
	addr, buf := mem.alloc(96 * 20)
	val := func(x, y int) uint16 { return uint16(1 + x + 64*y) }
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			binary.LittleEndian.PutUint16(buf[96*y+2*x:], val(x, y))
		}
	}
	return TensorMap2D{Addr: addr, ElemBytes: 2, Dims: [2]uint64{40, 20}, RowStride: 96, Box: [2]uint32{64, 8}, Swizzle: 3}, val
}

// tmaWant is the box at (c0, c1) as it lies in shared memory: row r at
// 128r, element e at +2e, zero outside the matrix, each byte address a
// swizzled to a ^ ((a>>7)&7)<<4 (the destination is 1024-byte aligned).
func tmaWant(val func(x, y int) uint16, c0, c1 int, swz bool) []byte {
	want := make([]byte, 1024)
	for r := 0; r < 8; r++ {
		for e := 0; e < 64; e++ {
			x, y := c0+e, c1+r
			var v uint16
			if x >= 0 && x < 40 && y >= 0 && y < 20 {
				v = val(x, y)
			}
			for b := 0; b < 2; b++ {
				a := 128*r + 2*e + b
				if swz {
					a ^= (a >> 7 & 7) << 4
				}
				want[a] = byte(v >> (8 * b))
			}
		}
	}
	return want
}

// runTMA launches src (64 threads) with the map m encoded at pmap (or
// mapBytes there when given, at byte mapOff) and in the tmap parameter,
// and returns out's 1024 bytes.
func runTMA(t *testing.T, src string, mem *testMem, m TensorMap2D, c0, c1 int32, mapBytes []byte, mapOff uint64) ([]byte, error) {
	t.Helper()
	k := kernel(t, src, "k")
	enc, err := EncodeTensorMap(m)
	if err != nil {
		t.Fatal(err)
	}
	if mapBytes == nil {
		mapBytes = enc[:]
	}
	pmap, mb := mem.alloc(256)
	copy(mb[mapOff:], mapBytes)
	pout, out := mem.alloc(1024)
	u32 := func(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	err = k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{64, 1, 1}, Memory: mem,
		Params: [][]byte{enc[:], ptrArg(pmap + mapOff), ptrArg(pout), u32(c0), u32(c1)}})
	return out, err
}

// TestTMA: the box at (-8, 16) of the 40×20 matrix, its first 8 columns
// and last 16 and its last 4 rows outside (zero), with 128-byte swizzle
// and without, the map in global memory and as a __grid_constant__
// parameter (cvta.param, as gemm_sm90.cu passes it).
func TestTMA(t *testing.T) {
	for _, c := range []struct {
		name string
		swz  int
		mapS string
	}{
		{"swizzle128", 3, ""},
		{"noswizzle", 0, ""},
		{"param", 3, "mov.b64 %rd9, tmap;\n\tcvta.param.u64 %rd1, %rd9;"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := &testMem{}
			m, val := tmaMatrix(mem)
			m.Swizzle = c.swz
			src := tmaSrc()
			if c.mapS != "" {
				src = tmaSrc("MAP", c.mapS)
			}
			out, err := runTMA(t, src, mem, m, -8, 16, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := tmaWant(val, -8, 16, c.swz == 3)
			bad := 0
			for i := range want {
				if out[i] != want[i] {
					if bad < 5 {
						t.Errorf("shared byte %d = %#x, want %#x", i, out[i], want[i])
					}
					bad++
				}
			}
			// Worked by hand: row 1 (y 17), element 8 (x 0) holds
			// 1 + 64·17 = 1089 = 0x441 at box byte 144, line 1's chunk 1,
			// swizzled to chunk 1 ^ 1 = 0: byte 128. Element 0 is x -8: zero.
			got := binary.LittleEndian.Uint16(out[144:])
			if c.swz == 3 {
				got = binary.LittleEndian.Uint16(out[128:])
			}
			if got != 0x441 || (c.swz == 3 && binary.LittleEndian.Uint16(out[144:]) != 0) {
				t.Errorf("row 1 element 8 = %#x, want 0x441", got)
			}
		})
	}
}

// Without the wait, the tile is read before the copy lands: the threads
// see shared memory's poison, and thread 0 exits with the copy queued.
func TestTMANoWait(t *testing.T) {
	mem := &testMem{}
	m, _ := tmaMatrix(mem)
	out, err := runTMA(t, tmaSrc("WAIT", ""), mem, m, -8, 16, nil, 0)
	wantFault(t, err, FaultTrap, 0, "ret", "thread (0,0,0)", "exit with 1 cp.async.bulk.tensor not completed")
	for i, b := range out[:16] {
		if b != 0xFF {
			t.Fatalf("out[%d] = %#x: thread 0 read the tile after all (want the 0xFF poison)", i, b)
		}
	}
}

func TestTMAFaults(t *testing.T) {
	mem := &testMem{}
	m, _ := tmaMatrix(mem)
	var zero [128]byte
	enc, _ := EncodeTensorMap(m)
	for _, c := range []struct {
		name     string
		src      string
		swz      int
		mapBytes []byte
		mapOff   uint64
		kind     FaultKind
		parts    []string
	}{
		{"magic", tmaSrc(), 3, zero[:], 0, FaultTrap, []string{"cp.async.bulk.tensor: tensor map at", "not a tensor map (magic 0x0"}},
		{"map misaligned", tmaSrc(), 3, enc[:], 16, FaultMisaligned, []string{"64-byte generic access", "not aligned to 64"}},
		{"dst swizzled", tmaSrc("DST", "128"), 3, nil, 0, FaultMisaligned, []string{"destination not 1024-byte aligned (128-byte swizzle)"}},
		{"dst", tmaSrc("DST", "64"), 0, nil, 0, FaultMisaligned, []string{"destination not 128-byte aligned (no swizzle)"}},
		{"tx underflow", tmaSrc("EXPECT", "512"), 3, nil, 0, FaultTrap, []string{"mbarrier.try_wait", "complete_tx of 1024 bytes by the cp.async.bulk.tensor at line 23 takes the tx-count of the mbarrier at shared 0x800 to -512"}},
		{"uninitialised", tmaSrc("INIT", ""), 3, nil, 0, FaultTrap, []string{"mbarrier.arrive.expect_tx", "mbarrier at shared 0x800 used before mbarrier.init"}},
		{"extra arrival", tmaSrc("EXTRA", "mbarrier.arrive.shared.b64 %rd6, [%r5];"), 3, nil, 0, FaultTrap, []string{"arrival on the mbarrier at shared 0x800, whose phase 0 expects no more (count 1)"}},
		// A count of 2 with one arrival: the phase never completes, and
		// the launch ends as a deadlock naming the barrier.
		{"never completes", tmaSrc("INIT", "mbarrier.init.shared.b64 [%r5], 2;"), 3, nil, 0, FaultDeadlock, []string{"no thread can progress", "32 lanes at mbarrier.try_wait.parity.shared::cta.b64 (line 30) on the mbarrier at shared 0x800 (phase 0: 1 of 2 arrivals and 0 tx bytes due)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm := m
			mm.Swizzle = c.swz
			_, err := runTMA(t, c.src, mem, mm, 0, 0, c.mapBytes, c.mapOff)
			wantFault(t, err, c.kind, 0, c.parts...)
		})
	}
}

// tma2PTX: two loads through one barrier, phases 0 and 1. The issuer is
// the last thread, so the others reach try_wait first and find the phase
// incomplete.
const tma2PTX = `.visible .entry k(.param .u64 pmap, .param .u64 pout, .param .u32 c0, .param .u32 c1, .param .u32 c2, .param .u32 c3)
{
	.reg .pred %p<4>;
	.reg .b32 %r<24>;
	.reg .b64 %rd<10>;
	.shared .align 1024 .b8 buf[1024];
	.shared .align 8 .b8 bar[8];
	ld.param.u64 %rd1, [pmap];
	ld.param.u64 %rd2, [pout];
	ld.param.u32 %r3, [c0];
	ld.param.u32 %r4, [c1];
	ld.param.u32 %r18, [c2];
	ld.param.u32 %r19, [c3];
	mov.u32 %r1, %tid.x;
	mov.u32 %r5, bar;
	mov.u32 %r6, buf;
	setp.ne.u32 %p1, %r1, 63;
	@%p1 bra $L0;
	mbarrier.init.shared.b64 [%r5], 1;
$L0:
	bar.sync 0;
	mov.u32 %r15, 0;
$LP:
	@%p1 bra $LW;
	mbarrier.arrive.expect_tx.shared.b64 %rd3, [%r5], 1024;
	cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%r6], [%rd1, {%r3, %r4}], [%r5];
$LW:
	{
	.reg .pred P1;
	mbarrier.try_wait.parity.shared.b64 P1, [%r5], %r15;
	selp.u32 %r8, 1, 0, P1;
	}
	setp.eq.u32 %p2, %r8, 0;
	@%p2 bra $LW;
	shl.b32 %r9, %r1, 4;
	add.u32 %r10, %r6, %r9;
	ld.shared.v4.u32 {%r11, %r12, %r13, %r14}, [%r10];
	shl.b32 %r16, %r15, 10;
	add.u32 %r17, %r16, %r9;
	cvt.u64.u32 %rd4, %r17;
	add.u64 %rd5, %rd2, %rd4;
	st.global.v4.u32 [%rd5], {%r11, %r12, %r13, %r14};
	bar.sync 0;
	mov.u32 %r3, %r18;
	mov.u32 %r4, %r19;
	add.u32 %r15, %r15, 1;
	setp.lt.u32 %p3, %r15, 2;
	@%p3 bra $LP;
	ret;
}
`

// TestTMATwoPhases: the boxes at (0, 0) and (32, 12) through one barrier,
// waited on with parity 0 then 1. The budget of 20000 instructions holds
// only if a try_wait that fails parks its thread: spinning through a slice
// of 16384 instructions would exceed it.
func TestTMATwoPhases(t *testing.T) {
	k := kernel(t, tma2PTX, "k")
	mem := &testMem{}
	m, val := tmaMatrix(mem)
	enc, err := EncodeTensorMap(m)
	if err != nil {
		t.Fatal(err)
	}
	pmap, mb := mem.alloc(128)
	copy(mb, enc[:])
	pout, out := mem.alloc(2048)
	u32 := func(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	err = k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{64, 1, 1}, Memory: mem, Budget: 20000,
		Params: [][]byte{ptrArg(pmap), ptrArg(pout), u32(0), u32(0), u32(32), u32(12)}})
	if err != nil {
		t.Fatal(err)
	}
	for ph, c := range [][2]int{{0, 0}, {32, 12}} {
		want := tmaWant(val, c[0], c[1], true)
		for i := range want {
			if out[1024*ph+i] != want[i] {
				t.Fatalf("phase %d: shared byte %d = %#x, want %#x", ph, i, out[1024*ph+i], want[i])
			}
		}
	}
}

// EncodeTensorMap refuses what cuTensorMapEncodeTiled refuses, and what
// it accepts decodes to itself.
func TestEncodeTensorMap(t *testing.T) {
	ok := TensorMap2D{Addr: 1 << 20, ElemBytes: 2, Dims: [2]uint64{4096, 1024}, RowStride: 8192, Box: [2]uint32{64, 128}, Swizzle: 3}
	enc, err := EncodeTensorMap(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeTensorMap(enc[:]); err != nil || got != ok {
		t.Fatalf("decoded %+v (%v), want %+v", got, err, ok)
	}
	for _, c := range []struct {
		edit func(m *TensorMap2D)
		want string
	}{
		{func(m *TensorMap2D) { m.ElemBytes = 8 }, "element size 8 bytes"},
		{func(m *TensorMap2D) { m.Box[0] = 128 }, "box rows of 256 bytes with 128-byte swizzle"},
		{func(m *TensorMap2D) { m.Box[1] = 0 }, "box [64 0]"},
		{func(m *TensorMap2D) { m.Box[1] = 257 }, "box [64 257]"},
		{func(m *TensorMap2D) { m.Box[0] = 4 }, "box rows of 8 bytes (a multiple of 16)"},
		{func(m *TensorMap2D) { m.RowStride = 8200 }, "row stride 8200 bytes"},
		{func(m *TensorMap2D) { m.Addr += 8 }, "not 16-byte aligned"},
		{func(m *TensorMap2D) { m.Swizzle = 2 }, "swizzle 2"},
		{func(m *TensorMap2D) { m.Dims[1] = 0 }, "dimensions [4096 0]"},
	} {
		m := ok
		c.edit(&m)
		if _, err := EncodeTensorMap(m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", m, err, c.want)
		}
	}
}

// Forms outside the simulated ones are refused when the module loads.
func TestTMARefused(t *testing.T) {
	for _, c := range []struct{ inst, want string }{
		{"cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%r1], [%rd1, {%r1, %r1, %r1}], [%r1];", "modifier .3d is not simulated"},
		{"cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%r1], [%rd1, {%r1, %r1}], [%r1], %rs1;", "modifier .multicast::cluster"},
		{"mbarrier.try_wait.shared.b64 %p1, [%r1], %rd1;", "mbarrier.try_wait.shared.b64 is not simulated"},
		{"mbarrier.init.b64 [%rd1], %r1;", "only .shared .b64 mbarriers"},
		{"mbarrier.init.parity.shared.b64 [%r1], %r1;", "modifier .parity is not simulated here"},
	} {
		src := ptxHeader + ".visible .entry k()\n{\n\t.reg .pred %p1;\n\t.reg .b16 %rs1;\n\t.reg .b32 %r1;\n\t.reg .b64 %rd1;\n\t" + c.inst + "\n\tret;\n}\n"
		m, err := Load("test.ptx", src)
		if err == nil {
			_, err = m.Kernel("k")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.inst, err, c.want)
		}
	}
}

// wakePTX: thread 0 inits a barrier of count 1 and waits on its phase 0;
// thread 32 (another warp) arrives, then stores 1 to out[1]; thread 0,
// woken, copies out[1] as it finds it to out[0].
const wakePTX = ptxHeader + `
.visible .entry k(.param .u64 pout)
{
	.reg .pred %p<4>;
	.reg .b32 %r<8>;
	.reg .b64 %rd<4>;
	.shared .align 8 .b64 bar;
	ld.param.u64 %rd1, [pout];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, bar;
	setp.ne.u32 %p1, %r1, 0;
	@%p1 bra $SKIP;
	mbarrier.init.shared.b64 [%r2], 1;
$SKIP:
	bar.sync 0;
	setp.eq.u32 %p2, %r1, 32;
	@%p2 bra $ARRIVE;
	@%p1 bra $DONE;
$WAIT:
	mbarrier.try_wait.parity.shared.b64 %p3, [%r2], 0;
	@!%p3 bra $WAIT;
	ld.global.u32 %r3, [%rd1+4];
	st.global.u32 [%rd1], %r3;
	bra $DONE;
$ARRIVE:
	mbarrier.arrive.shared.b64 %rd2, [%r2];
	mov.u32 %r4, 1;
	st.global.u32 [%rd1+4], %r4;
$DONE:
	ret;
}
`

// TestMbarrierArrivalYields: a thread whose arrival completes a phase that
// another waits on yields to it, so the waiter runs before the arriver's
// next instruction (out[0] = 0): the order in which a stage released too
// early is overwritten while still read, and the simulator faults.
func TestMbarrierArrivalYields(t *testing.T) {
	k := kernel(t, wakePTX, "k")
	mem := &testMem{}
	pout, out := mem.alloc(8)
	out[0] = 0xEE
	if err := k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{64, 1, 1}, Memory: mem, Budget: 100000,
		Params: [][]byte{ptrArg(pout)}}); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(out[0:]); got != 0 {
		t.Errorf("the waiter saw out[1] = %d: it ran after the arriving thread went on", got)
	}
	if got := binary.LittleEndian.Uint32(out[4:]); got != 1 {
		t.Errorf("out[1] = %d, want 1", got)
	}
}
