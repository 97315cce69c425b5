package ptxsim

import "fmt"

// raceState is the opt-in shared-memory racecheck (Config.Racecheck): per
// shared byte, the barrier epoch and warp of its last write and of its
// readers since. Two accesses from different warps to a byte, at least one
// a write, with no bar.sync between them, are a hazard the hardware may
// expose in any order; the simulator's one schedule would hide it.
// Accesses within a warp (ordered by shfl/__syncwarp or lockstep) and
// atomics are not checked.
type raceState struct {
	epoch uint32   // barrier releases in this CTA, from 1
	w, r  []uint32 // per byte: epoch<<8 | warp+1 (r: 0xFF for several warps)
	wline []int32  // per byte: PTX line of the last write
}

const manyWarps = 0xFF

func (rc *raceState) reset(n int) {
	if len(rc.w) != n {
		rc.w, rc.r, rc.wline = make([]uint32, n), make([]uint32, n), make([]int32, n)
	} else {
		clear(rc.w)
		clear(rc.r)
		clear(rc.wline)
	}
	rc.epoch = 1
}

// raceCheck records an access of n shared bytes at addr by t and fails
// the launch on a hazard with another warp since the last barrier.
func (t *thread) raceCheck(in *inst, addr uint64, n int, write bool) bool {
	rc := t.blk.race
	warp := uint32(t.lin/32) + 1
	cur := rc.epoch << 8
	end := addr + uint64(n)
	ws, rs, wl := rc.w[addr:end], rc.r[addr:end], rc.wline[addr:end]
	for j := range ws {
		i := addr + uint64(j)
		w, r := ws[j], rs[j]
		if w&^0xFF == cur && w&0xFF != warp {
			kind := "read after write"
			if write {
				kind = "write after write"
			}
			t.fault(in, FaultRace, addr, n, "shared", fmt.Sprintf("%s: shared byte 0x%x was written by warp %d at line %d with no bar.sync between", kind, i, w&0xFF-1, rc.wline[i]))
			return false
		}
		if write && r&^0xFF == cur && r&0xFF != warp {
			who := fmt.Sprintf("warp %d", r&0xFF-1)
			if r&0xFF == manyWarps {
				who = "several warps"
			}
			t.fault(in, FaultRace, addr, n, "shared", fmt.Sprintf("write after read: shared byte 0x%x was read by %s with no bar.sync between", i, who))
			return false
		}
		if write {
			ws[j], wl[j] = cur|warp, in.line
		} else if r&^0xFF != cur || r&0xFF == 0 {
			rs[j] = cur | warp
		} else if r&0xFF != warp {
			rs[j] = cur | manyWarps
		}
	}
	return true
}
