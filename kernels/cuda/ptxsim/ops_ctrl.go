package ptxsim

import (
	"fmt"
	"time"
)

func opBra(t *thread, in *inst) { t.pc = in.n }

func opExit(t *thread, in *inst) { t.exit(in) }

// exit ends the thread; its outstanding cp.async copies complete.
func (t *thread) exit(in *inst) {
	if len(t.wg) > 0 || len(t.wgGroups) > 0 {
		t.fault(in, FaultTrap, 0, 0, "", fmt.Sprintf("exit with %d wgmma.mma_async not retired by wgmma.wait_group", len(t.wg)+len(t.wgGroups)))
		return
	}
	if t.tmaPending > 0 {
		t.fault(in, FaultTrap, 0, 0, "", fmt.Sprintf("exit with %d cp.async.bulk.tensor not completed (no mbarrier.try_wait on its barrier landed it)", t.tmaPending))
		return
	}
	if len(t.copies) > 0 || len(t.groups) > 0 {
		t.groups = append(t.groups, t.copies)
		t.copies = nil
		t.waitGroups(0)
		if t.state == faulted {
			return
		}
	}
	t.state = exited
}

func opRet(t *thread, in *inst) {
	if len(t.stack) == 0 {
		t.exit(in)
		return
	}
	f := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	for _, c := range f.call.rets {
		copy(t.pmem[c.to:c.to+c.n], t.pmem[c.from:c.from+c.n])
	}
	t.pc = f.ret
}

func opCall(t *thread, in *inst) {
	c := in.call
	for _, a := range c.args {
		copy(t.pmem[a.to:a.to+a.n], t.pmem[a.from:a.from+a.n])
	}
	if len(t.stack) >= 64 {
		t.fault(in, FaultTrap, 0, 0, "", "call stack deeper than 64")
		return
	}
	t.stack = append(t.stack, frame{ret: t.pc, call: c})
	t.pc = c.pc
}

func opBar(t *thread, in *inst) {
	t.state = parkedBar
	t.at = in
}

func opParkWarp(t *thread, in *inst) {
	t.state = parkedWarp
	t.at = in
}

func opTrap(t *thread, in *inst) {
	t.fault(in, FaultTrap, 0, 0, "", "trap executed")
}

func opClock(t *thread, in *inst) {
	t.r[in.d] = uint64(time.Now().UnixNano()) & in.mask
}

// ---- cp.async ----

type asyncCopy struct {
	dst, src []byte // src shorter than dst: the rest is zero-filled
	off      uint64 // dst's shared address, for the racecheck
	in       *inst
}

// opCpAsync: in.a shared destination base (+in.off), in.b global source
// base (+in.off2), in.n copy size, in.c source size slot (-1: in.n).
func opCpAsync(t *thread, in *inst) {
	r := t.r
	n := int(in.n)
	dstOff := r[in.a] + in.off
	dst := t.mem(in, spShared, dstOff, n, accAsync)
	if dst == nil {
		return
	}
	srcN := n
	if in.c >= 0 {
		srcN = int(uint32(r[in.c]))
		if srcN > n {
			t.fault(in, FaultTrap, r[in.b]+in.off2, srcN, "global", "cp.async source size larger than the copy")
			return
		}
	}
	var src []byte
	if srcN > 0 {
		src = t.mem(in, spGlobal, r[in.b]+in.off2, n, accRead)
		if src == nil {
			return
		}
		src = src[:srcN]
	}
	t.copies = append(t.copies, asyncCopy{dst: dst, src: src, off: dstOff, in: in})
}

func opCpCommit(t *thread, in *inst) {
	t.groups = append(t.groups, t.copies)
	t.copies = nil
	if n := len(t.spare); n > 0 {
		t.copies, t.spare = t.spare[n-1], t.spare[:n-1]
	}
}

// opCpWait waits until at most r[in.a] committed groups are pending.
func opCpWait(t *thread, in *inst) { t.waitGroups(int(t.r[in.a])) }

func opCpWaitAll(t *thread, in *inst) {
	opCpCommit(t, in)
	t.waitGroups(0)
}

func (t *thread) waitGroups(keep int) {
	for len(t.groups) > keep {
		for _, c := range t.groups[0] {
			if t.blk.race != nil && !t.raceCheck(c.in, c.off, len(c.dst), true) {
				return
			}
			k := copy(c.dst, c.src)
			for i := k; i < len(c.dst); i++ {
				c.dst[i] = 0
			}
		}
		// The group's slice is reused for later copies (opCpCommit), so
		// that a kernel's cp.async loop allocates nothing.
		retireOldest(&t.groups, &t.spare)
	}
}

// retireOldest drops the oldest group of a queue, shifting the queue in
// place, and keeps the group's emptied slice in spare for a later group.
func retireOldest[T any](queue, spare *[][]T) {
	g := (*queue)[0]
	clear(g)
	*spare = append(*spare, g[:0])
	n := copy(*queue, (*queue)[1:])
	(*queue)[n] = nil
	*queue = (*queue)[:n]
}
