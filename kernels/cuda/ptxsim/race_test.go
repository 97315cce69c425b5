package ptxsim

import (
	"strconv"
	"strings"
	"testing"
)

// racePTX: thread t writes s[t], then (after a bar.sync when bar is
// "bar.sync 0;") reads s[(t+off) & mask].
func racePTX(bar string, off, mask int) string {
	return strings.NewReplacer("BAR", bar, "OFF", strconv.Itoa(off), "MASK", strconv.Itoa(mask)).Replace(`.visible .entry k(.param .u64 p)
{
	.reg .b32 %r<8>;
	.reg .b64 %rd<4>;
	.shared .align 4 .b8 s[256];
	ld.param.u64 %rd1, [p];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, s;
	shl.b32 %r3, %r1, 2;
	add.s32 %r4, %r2, %r3;
	st.shared.u32 [%r4], %r1;
	BAR
	add.s32 %r5, %r1, OFF;
	and.b32 %r5, %r5, MASK;
	shl.b32 %r5, %r5, 2;
	add.s32 %r5, %r2, %r5;
	ld.shared.u32 %r6, [%r5];
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.global.u32 [%rd3], %r6;
	ret;
}
`)
}

func runRace(t *testing.T, src string) error { return runRaceN(t, src, 64) }

func runRaceN(t *testing.T, src string, threads int) error {
	t.Helper()
	k := kernel(t, src, "k")
	mem := &testMem{}
	p, _ := mem.alloc(256)
	return k.Launch(Config{Grid: [3]int{1, 1, 1}, Block: [3]int{threads, 1, 1}, Memory: mem, Params: [][]byte{ptrArg(p)}, Racecheck: true})
}

func TestRacecheck(t *testing.T) {
	if err := runRace(t, racePTX("bar.sync 0;", 32, 63)); err != nil {
		t.Errorf("with the barrier: %v", err)
	}
	// Warp 0 runs first and reads warp 1's slots, then warp 1 writes them.
	err := runRace(t, racePTX("", 32, 63))
	wantFault(t, err, FaultRace, 14, "write after read", "read by warp 0 with no bar.sync between", "thread (32,0,0)")
	// Warp 1 reads what warp 0 wrote (s[t & 31]).
	err = runRace(t, racePTX("", 0, 31))
	wantFault(t, err, FaultRace, 20, "read after write", "written by warp 0 at line 14", "thread (32,0,0)")
	// Within one warp nothing is reported (lanes are ordered by the warp).
	if err := runRaceN(t, racePTX("", 1, 31), 32); err != nil {
		t.Errorf("read of a neighbour lane in the same warp: %v", err)
	}
}
