package ptxsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Hopper's warpgroup matrix multiply (PTX ISA 8.0, sm_90a), as
// kernels/cuda's sm_90a GEMM uses it:
//
//	wgmma.fence.sync.aligned;
//	wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16 {d...}, descA, descB, p, sa, sb, 0, 0;
//	wgmma.commit_group.sync.aligned;
//	wgmma.wait_group.sync.aligned n;
//	fence.proxy.async.shared::cta;
//
// Both operands come from shared memory through matrix descriptors, K-major
// (the transpose immediates 0), in the 128-byte swizzled layout: row r of
// an operand (of A's 64 rows or B's N) and its 16-byte chunk c (k 8c to
// 8c+7) lie at a = start + (r/8)·SBO + (r%8)·128 + 16c, swizzled as
// a ^ ((a>>7)&7)<<4: the chunk index XOR the address's row-in-8 bits, so the
// atom of 8 rows × 128 bytes must be 1024-byte aligned (the descriptor's
// base offset 0). B may also be MN-major (imm-trans-b 1, the nn product's
// B stored [K,N]): 8 k-rows of 64 consecutive columns an atom, atoms LBO
// apart along N and SBO apart along K (wgmmaElem). Other swizzles and
// layouts, and a transposed A, are refused with the descriptor's value or
// the immediate.
//
// The accumulators of warp w of the warpgroup (warps 4i..4i+3 make one)
// are rows 16w..16w+15 of the 64×N tile; lane l's register i holds
// D[16w + l/4 + 8·((i/2)%2)][8·(i/4) + 2·(l%4) + i%2], the mma.m16n8
// layout repeated along N. p false (scale-d) ignores the accumulators'
// input; sa, sb = -1 negate A or B.
//
// Asynchrony: an mma_async only joins its warp's queue; commit_group
// closes a group, and wait_group n runs the oldest groups, in order, until
// n remain, reading shared memory and the accumulators then and writing
// them. A kernel that reads an accumulator before the wait that retires
// the wgmma writing it therefore computes with the wrong values here,
// every run; a store or a cp.async (when issued) into shared memory that a
// pending wgmma reads faults (the hardware may read before or after it),
// and so does a thread that exits with wgmma work pending. Each output is the float64 sum of its 16 exact
// products and its input, rounded once to float32 (the hardware's own
// accumulation order and precision are not modelled: tests compare within
// float32-accumulation tolerances). The warps of a warpgroup are not made
// to wait for one another: each warp's rows depend on its own registers
// and on shared memory only.

// wgmmaOp is one mma_async in a warp's queue (every lane holds a copy).
// chunks are the 16-byte chunks of shared memory it reads (counted in the
// block's wgRead while it is pending).
type wgmmaOp struct {
	in           *inst
	descA, descB uint64
	scaleD       bool
	chunks       []uint32 // chunk indices (shared address / 16)
}

func init() {
	for n := 8; n <= 256; n += 8 {
		knownMods["m64n"+strconv.Itoa(n)+"k16"] = true
	}
	for _, m := range []string{"mma_async", "proxy", "fence"} {
		knownMods[m] = true
	}
}

// wgmma decodes the wgmma instructions (see above).
func (b *builder) wgmma(in *inst, oi opInfo, ops [][]string) error {
	var err error
	switch {
	case oi.mods["fence"]:
		in.fn = opNop // one schedule: nothing to order
	case oi.mods["commit_group"]:
		in.fn, in.coll = opParkWarp, collWgmmaCommit
	case oi.mods["wait_group"]:
		if len(ops) != 1 {
			return b.errf("%s: expected a group count", in.op)
		}
		if in.a, err = b.src(ops[0], "u32"); err != nil {
			return err
		}
		in.fn, in.coll = opParkWarp, collWgmmaWait
	case oi.mods["mma_async"]:
		return b.wgmmaMMA(in, oi, ops)
	default:
		return b.errf("%s is not simulated", in.op)
	}
	b.emit(*in)
	return nil
}

func (b *builder) wgmmaMMA(in *inst, oi opInfo, ops [][]string) error {
	n := 0
	for m := range oi.mods {
		if strings.HasPrefix(m, "m64n") && strings.HasSuffix(m, "k16") {
			n, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m, "m64n"), "k16"))
		}
	}
	if n == 0 || oi.typ(0) != "f32" || oi.typ(1) != "bf16" || oi.typ(2) != "bf16" || !oi.mods["sync"] || !oi.mods["aligned"] {
		return b.errf("%s: only wgmma.mma_async.sync.aligned.m64nNk16.f32.bf16.bf16 is simulated", in.op)
	}
	if len(ops) != 8 {
		return b.errf("%s: %d operands, expected d, a-desc, b-desc, scale-d, imm-scale-a, imm-scale-b, imm-trans-a, imm-trans-b", in.op, len(ops))
	}
	var err error
	if in.v, err = b.vec(ops[0], "f32", true); err != nil {
		return err
	}
	if len(in.v) != n/2 {
		return b.errf("%s: %d accumulator registers, expected %d", in.op, len(in.v), n/2)
	}
	if in.a, err = b.src(ops[1], "b64"); err != nil {
		return err
	}
	if in.b, err = b.src(ops[2], "b64"); err != nil {
		return err
	}
	if in.c, err = b.src(ops[3], "pred"); err != nil {
		return err
	}
	imm := func(i int) (int, error) {
		if len(ops[i]) != 1 {
			return 0, b.errf("%s: operand %d must be an immediate", in.op, i)
		}
		v, ok := parseInt(ops[i][0])
		if !ok {
			return 0, b.errf("%s: operand %d must be an immediate, got %s", in.op, i, ops[i][0])
		}
		return int(v), nil
	}
	in.n = int32(n)
	for i, bit := range []int32{1, 2} {
		s, err := imm(4 + i)
		if err != nil {
			return err
		}
		switch s {
		case 1:
		case -1:
			in.m |= bit
		default:
			return b.errf("%s: imm-scale %d (1 or -1)", in.op, s)
		}
	}
	for i := 6; i < 8; i++ {
		tr, err := imm(i)
		if err != nil {
			return err
		}
		switch {
		case tr == 0:
		case tr == 1 && i == 7:
			in.m |= wgTransB
		default:
			return b.errf("%s: imm-trans-%c %d (a transposed A is not simulated; B takes 0 or 1)", in.op, "ab"[i-6], tr)
		}
	}
	in.fn, in.coll = opParkWarp, collWgmmaIssue
	b.emit(*in)
	return nil
}

// collWgmmaIssue queues the mma_async in every lane, and counts the
// shared memory it will read as pending.
func collWgmmaIssue(b *block, lanes *[32]*thread, in *inst) bool {
	if !fullWarp(b, lanes, in) {
		return false
	}
	t0 := lanes[0]
	w := (t0.lin / 32) % 4
	// The 16-byte chunks it reads, each once: A's 16 rows of this warp and
	// B's n columns, 16 k each. Only chunks inside shared memory are
	// counted (a write can touch no other; reading one faults when the
	// group runs).
	nch := (len(b.shared) + 15) / 16
	if len(b.wgRead) != nch {
		b.wgRead, b.wgSeen, b.wgOut = make([]int32, nch), make([]uint32, nch), 0
	}
	b.wgGen++
	if b.wgGen == 0 {
		clear(b.wgSeen)
		b.wgGen = 1
	}
	var chunks []uint32
	if n := len(b.wgChunkSpare); n > 0 {
		chunks, b.wgChunkSpare = b.wgChunkSpare[n-1], b.wgChunkSpare[:n-1]
	}
	for _, o := range []struct {
		desc       uint64
		row0, rows int
		mnMajor    bool
	}{{t0.r[in.a], 16 * w, 16, false}, {t0.r[in.b], 0, int(in.n), in.m&wgTransB != 0}} {
		if _, err := wgmmaElem(o.desc, o.mnMajor, o.row0, 0); err != nil {
			b.newFault(FaultTrap, t0, in, 0, 0, "", fmt.Sprintf("wgmma.mma_async: descriptor %#016x: %v", o.desc, err))
			return false
		}
		for r := 0; r < o.rows; r++ {
			for k := 0; k < 16; k++ {
				a, _ := wgmmaElem(o.desc, o.mnMajor, o.row0+r, k)
				if c := a >> 4; c < uint64(nch) && b.wgSeen[c] != b.wgGen {
					b.wgSeen[c] = b.wgGen
					chunks = append(chunks, uint32(c))
				}
			}
		}
	}
	for _, c := range chunks {
		b.wgRead[c]++
	}
	b.wgOut += len(chunks)
	var first *thread
	for _, t := range lanes {
		op := wgmmaOp{in: in, descA: t.r[in.a], descB: t.r[in.b], scaleD: t.r[in.c] != 0, chunks: chunks}
		if first == nil {
			first = t
		} else if f := first.wg[len(first.wg)-1]; op.descA != f.descA || op.descB != f.descB || op.scaleD != f.scaleD {
			b.newFault(FaultTrap, t, in, 0, 0, "", fmt.Sprintf("wgmma.mma_async: lane %d's descriptors or scale-d differ from lane %d's (they must be the same across the warp)", t.lane, first.lane))
			return false
		}
		t.wg = append(t.wg, op)
	}
	return true
}

// collWgmmaCommit closes the queued mma_asyncs into a group.
func collWgmmaCommit(b *block, lanes *[32]*thread, in *inst) bool {
	if !fullWarp(b, lanes, in) {
		return false
	}
	for _, t := range lanes {
		t.wgGroups = append(t.wgGroups, t.wg)
		t.wg = nil
		if n := len(t.wgSpare); n > 0 {
			t.wg, t.wgSpare = t.wgSpare[n-1], t.wgSpare[:n-1]
		}
	}
	return true
}

// collWgmmaWait runs the oldest committed groups until n remain.
func collWgmmaWait(b *block, lanes *[32]*thread, in *inst) bool {
	if !fullWarp(b, lanes, in) {
		return false
	}
	return wgmmaRetire(b, lanes, in, int(lanes[0].r[in.a]))
}

func wgmmaRetire(b *block, lanes *[32]*thread, at *inst, keep int) bool {
	t0 := lanes[0]
	for len(t0.wgGroups) > keep {
		for _, op := range t0.wgGroups[0] {
			if !wgmmaRun(b, lanes, op) {
				return false
			}
			for _, c := range op.chunks {
				b.wgRead[c]--
			}
			b.wgOut -= len(op.chunks)
			// every lane's copy of op shares chunks; the group is dropped below
			b.wgChunkSpare = append(b.wgChunkSpare, op.chunks[:0])
		}
		// The lanes' group slices are reused for later mma_asyncs
		// (collWgmmaCommit), and the queues shift in place.
		for _, t := range lanes {
			retireOldest(&t.wgGroups, &t.wgSpare)
		}
	}
	return true
}

// wgTransB marks an mma_async whose B is MN-major (imm-trans-b 1), in
// inst.m beside the negation bits 1 (A) and 2 (B).
const wgTransB = 4

// wgmmaAddr is the shared-memory address of chunk c (k 8c..8c+7) of row r
// of a 128-byte-swizzled K-major operand (see the top of the file).
func wgmmaAddr(desc uint64, r, c int) (uint64, error) {
	return wgmmaElem(desc, false, r, 8*c)
}

// wgmmaElem is the shared-memory address of element (mn, k) of an operand
// in the 128-byte swizzled layout (k < 16), K-major or MN-major. K-major:
// row mn's 16 k are contiguous, at start + (mn/8)·SBO + (mn%8)·128 + 2k.
// MN-major (a transposed B): the atom is 8 k-rows of 64 consecutive mn
// (128 bytes), atoms along mn LBO apart and groups of 8 k SBO apart:
// start + (k/8)·SBO + (mn/64)·LBO + (k%8)·128 + 2·(mn%64) (CUTLASS's
// canonical GMMA MN-major SW128 layout, ((64,n),(8,k)):((1,LBO),(64,SBO))
// in elements). Both swizzled as a ^ ((a>>7)&7)<<4: the 16-byte chunk
// index XOR the row-in-8 bits, so atoms must be 1024-byte aligned.
func wgmmaElem(desc uint64, mnMajor bool, mn, k int) (uint64, error) {
	start := (desc & 0x3FFF) << 4
	lbo := ((desc >> 16) & 0x3FFF) << 4
	sbo := ((desc >> 32) & 0x3FFF) << 4
	if base := (desc >> 49) & 7; base != 0 {
		return 0, fmt.Errorf("matrix base offset %d (only 0, a 1024-byte aligned atom, is simulated)", base)
	}
	if swz := desc >> 62; swz != 1 {
		return 0, fmt.Errorf("swizzle mode %d (only 1, 128-byte, is simulated)", swz)
	}
	var a uint64
	if mnMajor {
		a = start + uint64(k/8)*sbo + uint64(mn/64)*lbo + uint64(k%8)*128 + 2*uint64(mn%64)
	} else {
		a = start + uint64(mn/8)*sbo + uint64(mn%8)*128 + 2*uint64(k)
	}
	return a ^ ((a>>7)&7)<<4, nil
}

// wgScratch holds a running mma_async's operands (A uses 16 rows).
type wgScratch struct{ a, b [256][16]float64 }

// wgmmaRun computes one mma_async for this warp's 16 rows.
func wgmmaRun(b *block, lanes *[32]*thread, op wgmmaOp) bool {
	t0 := lanes[0]
	w := (t0.lin / 32) % 4
	n := int(op.in.n)
	// load reads rows [row0, row0+rows) of an operand (A's rows, B's
	// columns), 16 k each, element by element from its layout.
	sh := b.shared
	load := func(desc uint64, mnMajor bool, rows, row0 int, neg bool, dst *[256][16]float64) bool {
		if _, err := wgmmaElem(desc, mnMajor, row0, 0); err != nil {
			b.newFault(FaultTrap, t0, op.in, 0, 0, "", fmt.Sprintf("wgmma.mma_async: descriptor %#016x: %v", desc, err))
			return false
		}
		for r := 0; r < rows; r++ {
			for k := 0; k < 16; k++ {
				addr, _ := wgmmaElem(desc, mnMajor, row0+r, k)
				var bs []byte
				if addr&1 == 0 && addr < uint64(len(sh)) && uint64(len(sh))-addr >= 2 && b.race == nil {
					bs = sh[addr : addr+2] // what t0.mem returns, without its checks' call
				} else if bs = t0.mem(op.in, spShared, addr, 2, accRead); bs == nil {
					return false
				}
				v := float64(bf16ToF32(uint16(bs[0]) | uint16(bs[1])<<8))
				if neg {
					v = -v
				}
				dst[r][k] = v
			}
		}
		return true
	}
	if b.wgs == nil {
		b.wgs = new(wgScratch)
	}
	A, B := &b.wgs.a, &b.wgs.b
	if !load(op.descA, false, 16, 16*w, op.in.m&1 != 0, A) || !load(op.descB, op.in.m&wgTransB != 0, n, 0, op.in.m&2 != 0, B) {
		return false
	}
	for l, t := range lanes {
		for i, slot := range op.in.v {
			row, col := l/4+8*((i>>1)&1), 8*(i>>2)+2*(l%4)+(i&1)
			s := 0.0
			if op.scaleD {
				s = float64(getF32(t.r, slot))
			}
			for k := 0; k < 16; k++ {
				s += A[row][k] * B[col][k]
			}
			if math.IsNaN(s) {
				putF32(t.r, slot, float32(math.NaN()))
			} else {
				putF32(t.r, slot, float32(s))
			}
		}
	}
	return true
}

// wgmmaWriteCheck faults a write of n bytes at shared address addr (a
// store, or a cp.async's destination when issued) that touches a chunk a
// pending wgmma.mma_async reads: the hardware may read it before or after
// the write.
func (t *thread) wgmmaWriteCheck(in *inst, addr uint64, n int) bool {
	for a := addr &^ 15; a < addr+uint64(n); a += 16 {
		if t.blk.wgRead[a>>4] > 0 {
			t.fault(in, FaultTrap, addr, n, "shared", "shared memory written while a wgmma.mma_async that reads it is pending (retire it with wgmma.wait_group first)")
			return false
		}
	}
	return true
}
