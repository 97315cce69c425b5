package ptxsim

import (
	"encoding/binary"
	"fmt"
)

// Hopper's tensor memory accelerator and the mbarriers that track it
// (PTX ISA 8.0, sm_90a), as kernels/cuda's TMA GEMM uses them:
//
//	mbarrier.init.shared{::cta}.b64 [bar], count;
//	mbarrier.arrive{.expect_tx}.shared{::cta}.b64 state, [bar]{, txBytes};
//	mbarrier.try_wait.parity.shared{::cta}.b64 p, [bar], parity;
//	cp.async.bulk.tensor.2d.shared::cluster.global{.tile}.mbarrier::complete_tx::bytes
//	    [dst], [tensorMap, {inner, row}], [bar];
//
// (.release/.acquire/.relaxed and .cta may qualify the mbarrier ops: one
// schedule, nothing to order.) An mbarrier's state lives beside shared
// memory, keyed by its address, not in its 8 bytes: pending arrivals, the
// tx-count and the phase number. A phase completes when both counts reach
// zero; try_wait.parity p is true once the phase of parity p has completed.
//
// The copy is lazy, like wgmma.go: cp.async.bulk.tensor checks its operands
// and reads the box from global memory when issued, queues it on its
// barrier, and writes shared memory (and completes its bytes) only when a
// thread executes try_wait on that barrier. A kernel that reads the tile
// without waiting therefore sees stale data every run, and a thread that
// exits with its copies still queued faults. Because complete_tx runs as
// late as the program allows, a tx-count going negative means the copies
// deliver more than expect_tx announced for the phase: a fault. (This may
// be stricter than the hardware: a kernel that issues a copy before its
// expect_tx, with a try_wait on the barrier in between, faults here.)
//
// The tensor map operand is a generic address: a map in global memory, or
// a __grid_constant__ kernel parameter's (mov of its name, cvta.param), as
// gemm_sm90.cu passes it. Its 128 bytes are EncodeTensorMap's.
//
// try_wait that finds the phase incomplete returns false and parks the
// thread until the barrier's state changes (mbarWake), so a spin loop costs
// one iteration per change instead of a slice of instructions, and a wait
// no thread can satisfy is reported as a deadlock naming the barrier's
// state. Copies land without the racecheck: the mbarrier orders them.

// mbarrier is one initialised barrier of a block.
type mbarrier struct {
	addr    uint64 // shared address, for messages
	count   int32  // arrivals per phase
	pending int32  // arrivals still due this phase
	tx      int64  // transaction bytes still due this phase
	phase   uint32
	version uint32 // bumped at every change: wakes parked try_waits
	copies  []tmaCopy
}

// tmaCopy is a queued cp.async.bulk.tensor: the box's bytes, read from
// global memory at issue, dense (row r at r·rowBytes), for dst.
type tmaCopy struct {
	t    *thread // the issuer, whose exit it holds up
	in   *inst
	dst  uint64
	data []byte
	swz  bool
}

// TensorMap2D is a 2-D tiled tensor map as cuTensorMapEncodeTiled takes it (the subset ftune uses).
type TensorMap2D struct {
	Addr      uint64    // global address of element (0, 0)
	ElemBytes int       // bytes per element (2 for bf16)
	Dims      [2]uint64 // extent in elements: [0] the contiguous dimension, [1] rows
	RowStride uint64    // bytes between consecutive rows (a multiple of 16)
	Box       [2]uint32 // box extent in elements: [0] along the row, [1] rows
	Swizzle   int       // 0: none; 3: 128-byte (CU_TENSOR_MAP_SWIZZLE_128B's value)
}

// tensorMapMagic opens an encoded map ("ptxsimT2" little-endian), so that
// a cp.async.bulk.tensor naming anything else faults.
const tensorMapMagic = 0x3254_6d69_7378_7470

func (m TensorMap2D) check() error {
	eb := uint64(m.ElemBytes)
	switch {
	case m.ElemBytes != 1 && m.ElemBytes != 2 && m.ElemBytes != 4:
		return fmt.Errorf("element size %d bytes (1, 2 or 4)", m.ElemBytes)
	case m.Swizzle != 0 && m.Swizzle != 3:
		return fmt.Errorf("swizzle %d (0 or 3, 128-byte)", m.Swizzle)
	case m.Addr%16 != 0:
		return fmt.Errorf("global address %#x not 16-byte aligned", m.Addr)
	case m.RowStride%16 != 0 || m.RowStride >= 1<<40:
		return fmt.Errorf("row stride %d bytes (a multiple of 16 below 2^40)", m.RowStride)
	case m.Dims[0] == 0 || m.Dims[1] == 0 || m.Dims[0] > 1<<32 || m.Dims[1] > 1<<32:
		return fmt.Errorf("dimensions %v (1 to 2^32)", m.Dims)
	case m.Box[0] == 0 || m.Box[1] == 0 || m.Box[0] > 256 || m.Box[1] > 256:
		return fmt.Errorf("box %v (1 to 256 elements each)", m.Box)
	case uint64(m.Box[0])*eb%16 != 0:
		return fmt.Errorf("box rows of %d bytes (a multiple of 16)", uint64(m.Box[0])*eb)
	case m.Swizzle == 3 && uint64(m.Box[0])*eb > 128:
		return fmt.Errorf("box rows of %d bytes with 128-byte swizzle (at most 128)", uint64(m.Box[0])*eb)
	}
	return nil
}

// EncodeTensorMap returns the 128 bytes the simulated driver stores for m
// (a private format; the simulator decodes it when a cp.async.bulk.tensor
// names its address), or an error for what cuTensorMapEncodeTiled refuses.
func EncodeTensorMap(m TensorMap2D) ([128]byte, error) {
	var b [128]byte
	if err := m.check(); err != nil {
		return b, fmt.Errorf("ptxsim: tensor map: %v", err)
	}
	le := binary.LittleEndian
	le.PutUint64(b[0:], tensorMapMagic)
	le.PutUint64(b[8:], m.Addr)
	le.PutUint64(b[16:], m.Dims[0])
	le.PutUint64(b[24:], m.Dims[1])
	le.PutUint64(b[32:], m.RowStride)
	le.PutUint32(b[40:], m.Box[0])
	le.PutUint32(b[44:], m.Box[1])
	le.PutUint32(b[48:], uint32(m.ElemBytes))
	le.PutUint32(b[52:], uint32(m.Swizzle))
	return b, nil
}

func decodeTensorMap(b []byte) (TensorMap2D, error) {
	le := binary.LittleEndian
	if v := le.Uint64(b); v != tensorMapMagic {
		return TensorMap2D{}, fmt.Errorf("not a tensor map (magic %#x; it must come from cuTensorMapEncodeTiled)", v)
	}
	m := TensorMap2D{Addr: le.Uint64(b[8:]), Dims: [2]uint64{le.Uint64(b[16:]), le.Uint64(b[24:])},
		RowStride: le.Uint64(b[32:]), Box: [2]uint32{le.Uint32(b[40:]), le.Uint32(b[44:])},
		ElemBytes: int(le.Uint32(b[48:])), Swizzle: int(le.Uint32(b[52:]))}
	return m, m.check() // a map overwritten in global memory
}

func init() {
	for _, m := range []string{"mbarrier", "init", "arrive", "expect_tx", "try_wait", "parity",
		"bulk", "tensor", "2d", "tile", "mbarrier::complete_tx::bytes"} {
		knownMods[m] = true
	}
}

// onlyMods refuses a modifier outside allowed (knownMods is shared by
// every instruction).
func (b *builder) onlyMods(in *inst, oi opInfo, allowed ...string) error {
	for m := range oi.mods {
		ok := false
		for _, a := range allowed {
			ok = ok || m == a
		}
		if !ok {
			return b.errf("%s: modifier .%s is not simulated here", in.op, m)
		}
	}
	return nil
}

// mbarrier decodes init, arrive[.expect_tx] and try_wait.parity: in.a and
// in.off the barrier's shared address, in.b the count, tx bytes or parity,
// in.d the state token or predicate.
func (b *builder) mbarrier(in *inst, oi opInfo, ops [][]string) error {
	if !oi.mods["shared"] || oi.typ(0) != "b64" || len(oi.types) != 1 {
		return b.errf("%s: only .shared .b64 mbarriers are simulated", in.op)
	}
	var err error
	addr := func(op []string) error {
		a, err := b.addr(op)
		in.a, in.off = a.base, a.off
		return err
	}
	sem := []string{"shared", "release", "acquire", "relaxed", "cta"}
	switch {
	case oi.mods["init"]:
		if err := b.onlyMods(in, oi, "init", "shared"); err != nil {
			return err
		}
		if len(ops) != 2 {
			return b.errf("%s: %d operands, expected [addr], count", in.op, len(ops))
		}
		if err := addr(ops[0]); err != nil {
			return err
		}
		if in.b, err = b.src(ops[1], "b32"); err != nil {
			return err
		}
		in.fn = opMbarInit
	case oi.mods["arrive"]:
		if err := b.onlyMods(in, oi, append(sem, "arrive", "expect_tx")...); err != nil {
			return err
		}
		want := pick(oi.mods["expect_tx"], 3, 2)
		if len(ops) != want {
			return b.errf("%s: %d operands, expected %d", in.op, len(ops), want)
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := addr(ops[1]); err != nil {
			return err
		}
		in.b = slotZero
		if want == 3 {
			if in.b, err = b.src(ops[2], "b32"); err != nil {
				return err
			}
		}
		in.fn = opMbarArrive
	case oi.mods["try_wait"] && oi.mods["parity"]:
		if err := b.onlyMods(in, oi, append(sem, "try_wait", "parity")...); err != nil {
			return err
		}
		if len(ops) != 3 {
			return b.errf("%s: %d operands, expected p, [addr], parity", in.op, len(ops))
		}
		if in.d, err = b.dst(ops[0]); err != nil {
			return err
		}
		if err := addr(ops[1]); err != nil {
			return err
		}
		if in.b, err = b.src(ops[2], "b32"); err != nil {
			return err
		}
		in.fn = opMbarTryWait
	default:
		return b.errf("%s is not simulated (init, arrive, arrive.expect_tx and try_wait.parity are)", in.op)
	}
	b.emit(*in)
	return nil
}

// tma decodes cp.async.bulk.tensor.2d: in.a+in.off the destination, in.b
// +in.off2 the tensor map, in.v {inner, row, barrier base, barrier offset}
// (the offset in a constant slot: inst has two offset fields).
func (b *builder) tma(in *inst, oi opInfo, ops [][]string) error {
	if !oi.mods["tensor"] || !oi.mods["2d"] || !oi.mods["shared"] || !oi.mods["global"] || !oi.mods["mbarrier::complete_tx::bytes"] {
		return b.errf("%s: only cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes is simulated", in.op)
	}
	if err := b.onlyMods(in, oi, "async", "bulk", "tensor", "2d", "shared", "global", "tile", "mbarrier::complete_tx::bytes"); err != nil {
		return err
	}
	if len(oi.types) != 0 || len(ops) != 3 {
		return b.errf("%s: expected [dst], [tensorMap, {inner, row}], [mbar]", in.op)
	}
	d, err := b.addr(ops[0])
	if err != nil {
		return err
	}
	// [map, {c0, c1}]: the map's address, then the coordinate vector.
	src := ops[1]
	if len(src) < 7 || src[0] != "[" || src[len(src)-1] != "]" {
		return b.errf("%s: bad tensor operand %v", in.op, src)
	}
	parts := splitOperands(src[1 : len(src)-1])
	if len(parts) != 2 {
		return b.errf("%s: tensor operand needs a map and two coordinates", in.op)
	}
	m, err := b.addr(append(append([]string{"["}, parts[0]...), "]"))
	if err != nil {
		return err
	}
	coords, err := b.vec(parts[1], "b32", false)
	if err != nil {
		return err
	}
	if len(coords) != 2 {
		return b.errf("%s: %d coordinates for a 2-D tensor", in.op, len(coords))
	}
	bar, err := b.addr(ops[2])
	if err != nil {
		return err
	}
	in.a, in.off, in.b, in.off2 = d.base, d.off, m.base, m.off
	in.v = append(coords, bar.base, b.constSlot(bar.off))
	in.fn = opTma
	b.emit(*in)
	return nil
}

// bar returns the initialised barrier at shared address addr, or faults.
func (t *thread) bar(in *inst, addr uint64) *mbarrier {
	if t.mem(in, spShared, addr, 8, accAtomic) == nil {
		return nil // outside shared memory or misaligned
	}
	m := t.blk.mbars[addr]
	if m == nil {
		t.fault(in, FaultTrap, addr, 8, "shared", fmt.Sprintf("mbarrier at shared 0x%x used before mbarrier.init", addr))
	}
	return m
}

func opMbarInit(t *thread, in *inst) {
	addr := t.r[in.a] + in.off
	if t.mem(in, spShared, addr, 8, accAtomic) == nil {
		return
	}
	n := uint32(t.r[in.b])
	if n == 0 || n >= 1<<20 {
		t.fault(in, FaultTrap, addr, 8, "shared", fmt.Sprintf("mbarrier.init count %d (1 to 2^20-1)", n))
		return
	}
	b := t.blk
	if b.mbars == nil {
		b.mbars = map[uint64]*mbarrier{}
	}
	m := b.mbars[addr]
	if m != nil && len(m.copies) > 0 {
		t.fault(in, FaultTrap, addr, 8, "shared", fmt.Sprintf("mbarrier.init on the barrier at shared 0x%x while %d cp.async.bulk.tensor are queued on it", addr, len(m.copies)))
		return
	}
	if m == nil {
		m = &mbarrier{addr: addr}
		b.mbars[addr] = m
	}
	*m = mbarrier{addr: addr, count: int32(n), pending: int32(n), version: m.version + 1}
}

// opMbarArrive: expect_tx of r[in.b] bytes (0 for a plain arrive), then one
// arrival. The state token is the phase arrived on.
func opMbarArrive(t *thread, in *inst) {
	addr := t.r[in.a] + in.off
	m := t.bar(in, addr)
	if m == nil {
		return
	}
	if m.pending == 0 {
		t.fault(in, FaultTrap, addr, 8, "shared", fmt.Sprintf("arrival on the mbarrier at shared 0x%x, whose phase %d expects no more (count %d)", addr, m.phase, m.count))
		return
	}
	t.r[in.d] = uint64(m.phase)
	t.r[slotSink] = 0
	m.tx += int64(uint32(t.r[in.b]))
	m.pending--
	phase := m.phase
	m.step()
	if m.phase != phase && t.blk.wakeWaiters(m) {
		// The arrival completed a phase others wait for: they run before
		// this thread goes on (next round, in thread order), the most
		// adversarial order for an arrival made too early, e.g. a stage
		// released while a wgmma still reads it: the producer's copy into
		// it then faults at issue (opTma's pending-wgmma check).
		t.state = yielding
	}
}

// wakeWaiters makes the threads parked at a try_wait on m runnable; it
// reports whether there were any.
func (b *block) wakeWaiters(m *mbarrier) bool {
	woke := false
	for i := range b.threads {
		if w := &b.threads[i]; w.state == parkedMbar && w.mbarWait == m {
			w.state, w.at = running, nil
			woke = true
		}
	}
	return woke
}

// step completes the phase when nothing is due, and marks a change.
func (m *mbarrier) step() {
	if m.pending == 0 && m.tx == 0 {
		m.phase++
		m.pending = m.count
	}
	m.version++
}

// opMbarTryWait lands the copies queued on the barrier, in issue order,
// then tests the phase; false parks the thread until the barrier changes.
func opMbarTryWait(t *thread, in *inst) {
	addr := t.r[in.a] + in.off
	m := t.bar(in, addr)
	if m == nil {
		return
	}
	sh := t.blk.shared
	for len(m.copies) > 0 {
		c := m.copies[0]
		m.copies = m.copies[1:]
		c.t.tmaPending--
		// 16-byte chunks stay whole under the swizzle (it permutes the
		// chunks of each 128-byte row); bounds were checked at issue.
		for i := 0; i < len(c.data); i += 16 {
			copy(sh[tmaSwizzle(c.dst+uint64(i), c.swz):], c.data[i:i+16])
		}
		if m.tx -= int64(len(c.data)); m.tx < 0 {
			t.fault(in, FaultTrap, addr, 8, "shared", fmt.Sprintf("complete_tx of %d bytes by the cp.async.bulk.tensor at line %d takes the tx-count of the mbarrier at shared 0x%x to %d: expect_tx announced fewer bytes for phase %d (or came after the copy)", len(c.data), c.in.line, addr, m.tx, m.phase))
			return
		}
		m.step()
	}
	done := m.phase&1 != uint32(t.r[in.b])&1
	t.r[in.d] = b2u(done)
	t.r[slotSink] = 0
	if !done {
		t.state, t.at, t.mbarWait, t.mbarSeen = parkedMbar, in, m, m.version
	}
}

// mbarWake resumes the threads parked at try_wait whose barrier changed
// since; it reports whether any did.
func (b *block) mbarWake() bool {
	woke := false
	for i := range b.threads {
		t := &b.threads[i]
		if t.state == parkedMbar && t.mbarWait.version != t.mbarSeen {
			t.state, t.at = running, nil
			woke = true
		}
	}
	return woke
}

// waitState describes a parked try_wait, for the deadlock fault.
func (t *thread) waitState() string {
	m := t.mbarWait
	return fmt.Sprintf(" on the mbarrier at shared 0x%x (phase %d: %d of %d arrivals and %d tx bytes due)", m.addr, m.phase, m.pending, m.count, m.tx)
}

func tmaSwizzle(a uint64, swz bool) uint64 {
	if swz {
		return a ^ ((a>>7)&7)<<4
	}
	return a
}

// opTma issues a cp.async.bulk.tensor: decode the map, read the box
// (zero outside the tensor), check the destination, queue on the barrier.
func opTma(t *thread, in *inst) {
	r := t.r
	m := t.bar(in, r[in.v[2]]+r[in.v[3]])
	if m == nil {
		return
	}
	mapAddr := r[in.b] + in.off2
	var raw [128]byte
	for h := 0; h < 2; h++ { // two 64-byte reads: the map is 64-byte aligned
		p := t.mem(in, spGeneric, mapAddr+uint64(64*h), 64, accRead)
		if p == nil {
			return
		}
		copy(raw[64*h:], p)
	}
	tm, err := decodeTensorMap(raw[:])
	if err != nil {
		t.fault(in, FaultTrap, 0, 0, "", fmt.Sprintf("cp.async.bulk.tensor: tensor map at 0x%x: %v", mapAddr, err))
		return
	}
	dst := r[in.a] + in.off
	swz := tm.Swizzle == 3
	if align := uint64(pick(swz, 1024, 128)); dst%align != 0 {
		t.fault(in, FaultMisaligned, dst, int(align), "shared", fmt.Sprintf("cp.async.bulk.tensor destination not %d-byte aligned (%s)", align, pick(swz, "128-byte swizzle", "no swizzle")))
		return
	}
	eb := tm.ElemBytes
	rowBytes := int(tm.Box[0]) * eb
	data := make([]byte, rowBytes*int(tm.Box[1]))
	sh := t.blk
	for i := 0; i < len(data); i += 16 {
		a := tmaSwizzle(dst+uint64(i), swz)
		if a+16 > uint64(len(sh.shared)) {
			t.fault(in, FaultIllegalAddress, a, 16, "shared", fmt.Sprintf("cp.async.bulk.tensor destination outside the block's %d bytes of shared memory", len(sh.shared)))
			return
		}
		if sh.wgOut > 0 && !t.wgmmaWriteCheck(in, a, 16) {
			return
		}
	}
	c0, c1 := int64(int32(r[in.v[0]])), int64(int32(r[in.v[1]]))
	for y := 0; y < int(tm.Box[1]); y++ {
		row := c1 + int64(y)
		if row < 0 || uint64(row) >= tm.Dims[1] {
			continue // out of bounds: zero
		}
		for e := 0; e < int(tm.Box[0]); e++ {
			x := c0 + int64(e)
			if x < 0 || uint64(x) >= tm.Dims[0] {
				continue
			}
			p := t.mem(in, spGlobal, tm.Addr+uint64(row)*tm.RowStride+uint64(x)*uint64(eb), eb, accRead)
			if p == nil {
				return
			}
			copy(data[y*rowBytes+e*eb:], p)
		}
	}
	m.copies = append(m.copies, tmaCopy{t: t, in: in, dst: dst, data: data, swz: swz})
	m.version++
	t.tmaPending++
}
