package ptxsim

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// handler executes one instruction for one thread. The run loop has already
// advanced t.pc past it; branches overwrite t.pc.
type handler func(t *thread, in *inst)

// collHandler executes a warp collective (shfl, ldmatrix, mma) for the lanes
// parked at it, once every lane that must take part has arrived. lanes is
// indexed by lane id; nil entries take no part.
type collHandler func(b *block, lanes *[32]*thread, in *inst) bool

// inst is one pre-decoded instruction. Operands are register-file slots:
// immediates and symbol addresses live in constant slots, so handlers never
// decode anything. The fields the run loop and the common handlers read
// come first and the rest sit behind a pointer (instX), so that the code
// array, walked by every thread in turn, takes half the cache.
type inst struct {
	fn    handler
	guard int32 // predicate slot, -1: unconditional
	d     int32
	a, b  int32
	c, e  int32
	d2    int32
	n     int32  // branch target, access size, ...
	m     int32  // vector length, mode, ...
	w     uint8  // operand width in bits
	gneg  bool   // @!%p
	off   uint64 // address offset
	mask  uint64 // result bits of integer ops
	*instX
}

// instX holds an instruction's less used fields; every decoded instruction
// has its own.
type instX struct {
	coll  collHandler
	v     []int32
	off2  uint64 // second address offset (cp.async source)
	call  *callInfo
	line  int32
	tk    byte   // type letter (atomics)
	loose bool   // runs once every live lane of the warp waits somewhere (activemask)
	op    string // opcode text, for errors
}

// Thread states.
const (
	running uint8 = iota
	parkedWarp
	parkedBar
	parkedMbar // at an mbarrier.try_wait that found its phase incomplete (tma.go)
	yielding   // ended its slice early to let woken threads run first (tma.go); runnable
	exited
	faulted
)

type frame struct {
	ret  int32
	call *callInfo
}

type thread struct {
	r      []uint64
	pc     int32
	state  uint8
	at     *inst
	blk    *block
	lin    int // linear thread index in the block
	lane   int
	tid    [3]int
	local  []byte
	pmem   []byte
	stack  []frame
	copies []asyncCopy   // cp.async issued, not committed
	groups [][]asyncCopy // committed groups, oldest first
	spare  [][]asyncCopy // emptied groups' slices, for later copies
	// wg and wgGroups are the warp's wgmma.mma_async queue (wgmma.go):
	// issued and not committed, and committed groups, oldest first.
	wg       []wgmmaOp
	wgGroups [][]wgmmaOp
	wgSpare  [][]wgmmaOp // retired groups' slices, for later mma_asyncs
	// tmaPending counts the cp.async.bulk.tensor it issued still queued;
	// mbarWait and mbarSeen are the barrier and version a parked
	// try_wait waits on (tma.go).
	tmaPending int32
	mbarWait   *mbarrier
	mbarSeen   uint32
	steps      int64
}

// block is one CTA being executed by a worker; a worker reuses its block
// for each CTA it takes.
type block struct {
	k         *Kernel
	l         *launch
	ctaid     [3]int
	threads   []thread
	regs      []uint64
	shared    []byte
	cache     [cacheWays]memCache
	cacheNext int
	// wgRead counts, per 16-byte chunk of shared memory, the pending
	// wgmma.mma_asyncs (not yet retired by wgmma.wait_group) that read it:
	// a write there before they retire is a race (wgmma.go). wgOut is
	// their sum (0: nothing pending); wgSeen and wgGen dedupe an issue's
	// chunks; wgs holds a running mma_async's operands.
	wgRead []int32
	wgOut  int
	wgSeen []uint32
	wgGen  uint32
	wgs    *wgScratch
	// wgChunkSpare are retired mma_asyncs' chunk lists, for later ones.
	wgChunkSpare [][]uint32
	// mbars are the initialised mbarriers by shared address (tma.go).
	mbars   map[uint64]*mbarrier
	group   [32]*thread // tryCollective's lanes
	race    *raceState  // nil unless Config.Racecheck
	raceMem raceState
	fault   *Fault
}

type launch struct {
	k       *Kernel
	cfg     Config
	kparams []byte
	steps   atomic.Int64
	stop    atomic.Bool
	mu      sync.Mutex
	fault   *Fault
}

// Memory is the device memory a launch may touch: Find returns the live
// allocation containing addr (its base address and its bytes). It is called
// from several goroutines at once and must not change during a launch.
type Memory interface {
	Find(addr uint64) (base uint64, mem []byte, ok bool)
}

// Config describes one launch.
type Config struct {
	Grid, Block [3]int
	SharedBytes int      // dynamic shared memory
	Params      [][]byte // one per kernel parameter, at least its size
	Memory      Memory
	Budget      int64 // instructions for the whole launch; 0: DefaultBudget
	Racecheck   bool  // check shared memory for hazards between warps (see raceState)
	Workers     int   // goroutines running blocks; 0: GOMAXPROCS
}

// DefaultBudget is the instruction budget of a launch when Config.Budget is 0.
const DefaultBudget = int64(20_000_000_000)

// slice is how many instructions a thread runs before yielding.
const slice = 1 << 14

// Launch runs the kernel over the grid and returns the first fault (a *Fault)
// or nil.
func (k *Kernel) Launch(cfg Config) error {
	for i := 0; i < 3; i++ {
		if cfg.Grid[i] <= 0 || cfg.Block[i] <= 0 {
			return fmt.Errorf("ptxsim: launch %s: grid %v block %v", k.Name, cfg.Grid, cfg.Block)
		}
	}
	nthr := cfg.Block[0] * cfg.Block[1] * cfg.Block[2]
	if nthr > 1024 {
		return fmt.Errorf("ptxsim: launch %s: block %v has %d threads, at most 1024", k.Name, cfg.Block, nthr)
	}
	if len(cfg.Params) != len(k.params) {
		return fmt.Errorf("ptxsim: launch %s: %d parameters given, kernel takes %d", k.Name, len(cfg.Params), len(k.params))
	}
	l := &launch{k: k, cfg: cfg, kparams: make([]byte, k.paramSize)}
	for i, p := range k.params {
		if len(cfg.Params[i]) < p.size {
			return fmt.Errorf("ptxsim: launch %s: parameter %d (%s) has %d bytes, needs %d", k.Name, i, p.name, len(cfg.Params[i]), p.size)
		}
		copy(l.kparams[k.paramOff[i]:], cfg.Params[i][:p.size])
	}
	if l.cfg.Budget <= 0 {
		l.cfg.Budget = DefaultBudget
	}
	nblocks := cfg.Grid[0] * cfg.Grid[1] * cfg.Grid[2]
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, nblocks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := getBlock(k)
			b.l = l
			b.cache = [cacheWays]memCache{}
			defer func() { b.l = nil; b.cache = [cacheWays]memCache{}; putBlock(b) }()
			for !l.stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= nblocks {
					return
				}
				b.ctaid = [3]int{i % cfg.Grid[0], i / cfg.Grid[0] % cfg.Grid[1], i / (cfg.Grid[0] * cfg.Grid[1])}
				if f := b.run(); f != nil {
					l.mu.Lock()
					if l.fault == nil {
						l.fault = f
					}
					l.mu.Unlock()
					l.stop.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if l.fault != nil {
		return l.fault
	}
	return nil
}

// blockCache keeps the blocks of recent launches for the next launches of
// their kernels, the most recently used last, up to blockCacheBytes: a
// block's register files are large (up to 12000 slots a thread, 10 MB a
// block), and allocating them anew costs more than running a small
// kernel. Unlike a sync.Pool it survives garbage collections, which the
// allocations themselves would otherwise bring on every few launches.
var blockCache struct {
	sync.Mutex
	list  []*block
	bytes int
}

const blockCacheBytes = 256 << 20

// getBlock returns a cached block of k, or a new one.
func getBlock(k *Kernel) *block {
	c := &blockCache
	c.Lock()
	defer c.Unlock()
	for i := len(c.list) - 1; i >= 0; i-- {
		if b := c.list[i]; b.k == k {
			last := len(c.list) - 1
			copy(c.list[i:], c.list[i+1:])
			c.list[last] = nil
			c.list = c.list[:last]
			c.bytes -= b.size()
			return b
		}
	}
	return &block{k: k}
}

// putBlock caches b, dropping the least recently used blocks past the limit.
func putBlock(b *block) {
	c := &blockCache
	c.Lock()
	defer c.Unlock()
	c.list = append(c.list, b)
	c.bytes += b.size()
	n := 0
	for c.bytes > blockCacheBytes && n < len(c.list)-1 {
		c.bytes -= c.list[n].size()
		n++
	}
	if n > 0 {
		m := copy(c.list, c.list[n:])
		clear(c.list[m:])
		c.list = c.list[:m]
	}
}

// size is about the bytes a block holds.
func (b *block) size() int {
	n := 8*len(b.regs) + len(b.shared) + 12*len(b.raceMem.w) + 8*len(b.wgRead)
	if len(b.threads) > 0 {
		t := &b.threads[0]
		n += len(b.threads) * (int(unsafe.Sizeof(*t)) + len(t.local) + len(t.pmem))
	}
	if b.wgs != nil {
		n += int(unsafe.Sizeof(*b.wgs))
	}
	return n
}

// setup prepares the block's threads for its CTA.
func (b *block) setup() {
	k, cfg := b.k, b.l.cfg
	nthr := cfg.Block[0] * cfg.Block[1] * cfg.Block[2]
	nr := len(k.tmpl)
	fresh := false
	if len(b.threads) != nthr {
		if cap(b.threads) >= nthr && cap(b.regs) >= nthr*nr {
			// A block of the same kernel with more threads before: its
			// register files are reused like a same-sized block's.
			b.threads, b.regs = b.threads[:nthr], b.regs[:nthr*nr]
		} else {
			fresh = true
			b.threads = make([]thread, nthr)
			b.regs = make([]uint64, nthr*nr)
		}
		for i := range b.threads {
			t := &b.threads[i]
			t.r = b.regs[i*nr : (i+1)*nr : (i+1)*nr]
			if len(t.local) != k.localSize {
				t.local = make([]byte, k.localSize)
			}
			if len(t.pmem) != k.pmemSize {
				t.pmem = make([]byte, k.pmemSize)
			}
		}
	}
	if ns := k.sharedStatic + cfg.SharedBytes; len(b.shared) != ns {
		if cap(b.shared) >= ns {
			b.shared = b.shared[:ns]
		} else {
			b.shared = make([]byte, ns)
		}
	}
	for i := range b.shared {
		b.shared[i] = 0xFF
	}
	b.race = nil
	if cfg.Racecheck {
		b.race = &b.raceMem
		b.race.reset(len(b.shared))
	}
	nwarps := (nthr + 31) / 32
	for i := range b.threads {
		t := &b.threads[i]
		// Registers start at zero in a fresh block and keep the previous
		// CTA's values in a reused one (reading a register before writing
		// it is undefined in PTX); copying the whole file per CTA would cost
		// more than running small kernels. Fixed slots and constants are set.
		if fresh {
			// make zeroed the registers, which are zero in the template
			copy(t.r[:numFixed], k.tmpl[:numFixed])
			copy(t.r[k.constStart:], k.tmpl[k.constStart:])
		} else {
			copy(t.r[k.constStart:], k.tmpl[k.constStart:])
		}
		t.pc, t.state, t.at, t.blk, t.lin, t.lane = 0, running, nil, b, i, i%32
		t.tid = [3]int{i % cfg.Block[0], i / cfg.Block[0] % cfg.Block[1], i / (cfg.Block[0] * cfg.Block[1])}
		t.stack, t.copies, t.groups, t.steps = t.stack[:0], t.copies[:0], t.groups[:0], 0
		t.wg, t.wgGroups = t.wg[:0], t.wgGroups[:0]
		t.tmaPending, t.mbarWait = 0, nil
		r := t.r
		for d := 0; d < 3; d++ {
			r[slotTid+d] = uint64(t.tid[d])
			r[slotNtid+d] = uint64(cfg.Block[d])
			r[slotCtaid+d] = uint64(b.ctaid[d])
			r[slotNctaid+d] = uint64(cfg.Grid[d])
		}
		r[slotLaneid] = uint64(t.lane)
		r[slotDynSmem] = uint64(cfg.SharedBytes)
		r[slotTotalSmem] = uint64(k.sharedStatic + cfg.SharedBytes)
		r[slotWarpid] = uint64(i / 32)
		r[slotNwarpid] = uint64(nwarps)
		r[slotLanemaskEq] = 1 << t.lane
		r[slotLanemaskLt] = 1<<t.lane - 1
		r[slotLanemaskLe] = 1<<(t.lane+1) - 1
		r[slotLanemaskGt] = uint64(^uint32(1<<(t.lane+1) - 1))
		r[slotLanemaskGe] = uint64(^uint32(1<<t.lane - 1))
		for j := range t.local {
			t.local[j] = 0
		}
	}
}

// run executes one CTA to completion.
func (b *block) run() *Fault {
	b.setup()
	b.fault = nil
	if b.wgOut != 0 { // a faulted launch left mma_asyncs pending
		clear(b.wgRead)
		b.wgOut = 0
	}
	clear(b.mbars)
	budget := b.l.cfg.Budget
	for {
		ran := false
		for i := range b.threads {
			t := &b.threads[i]
			if t.state != running {
				continue
			}
			ran = true
			t.run()
			if b.fault != nil {
				return b.fault
			}
			if t.state == yielding {
				t.state = running
			}
		}
		var steps int64
		for i := range b.threads {
			steps += b.threads[i].steps
			b.threads[i].steps = 0
		}
		if b.l.steps.Add(steps) > budget {
			return b.newFault(FaultBudget, nil, nil, 0, 0, "", fmt.Sprintf("instruction budget of %d exceeded (an infinite loop?)", budget))
		}
		if b.l.stop.Load() {
			return nil
		}
		if ran {
			continue // threads that yielded at the end of their slice run again
		}
		progress, err := b.collectives()
		if err != nil {
			return err
		}
		if progress {
			continue
		}
		if b.barrier() || b.mbarWake() {
			continue
		}
		done := true
		for i := range b.threads {
			if b.threads[i].state != exited {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		return b.deadlock()
	}
}

// run executes the thread until it parks, exits, faults or uses its slice.
func (t *thread) run() {
	code := t.blk.k.code
	r := t.r
	n := int64(0)
	for t.state == running && n < slice {
		in := &code[t.pc]
		t.pc++
		n++
		if in.guard >= 0 && (r[in.guard] != 0) == in.gneg {
			continue
		}
		in.fn(t, in)
	}
	t.steps += n
}

// collectives runs every warp collective whose lanes have all arrived. The
// lanes of a warp may wait at different collectives (divergent code with
// partial member masks); each is tried.
func (b *block) collectives() (bool, *Fault) {
	progress := false
	n := len(b.threads)
	for w := 0; w*32 < n; w++ {
		base := w * 32
		lanesN := min(32, n-base)
		for {
			var insts [32]*inst
			ni := 0
			for l := 0; l < lanesN; l++ {
				t := &b.threads[base+l]
				if t.state != parkedWarp {
					continue
				}
				seen := false
				for _, x := range insts[:ni] {
					seen = seen || x == t.at
				}
				if !seen {
					insts[ni] = t.at
					ni++
				}
			}
			ran := false
			for _, x := range insts[:ni] {
				if b.tryCollective(base, lanesN, x) {
					if b.fault != nil {
						return false, b.fault
					}
					ran, progress = true, true
					break // states changed: rescan the warp
				}
			}
			if !ran {
				break
			}
		}
	}
	return progress, nil
}

// tryCollective runs collective x for the lanes parked at it if every lane
// it needs (its member mask, less exited lanes and lanes past the block's
// end) has arrived.
func (b *block) tryCollective(base, lanesN int, x *inst) bool {
	// The lanes live in the block: a local array passed to x.coll would
	// escape, one allocation per collective.
	group := &b.group
	*group = [32]*thread{}
	var need uint32
	for l := 0; l < lanesN; l++ {
		t := &b.threads[base+l]
		if t.state == parkedWarp && t.at == x {
			group[l] = t
			need |= t.memberMask()
		}
	}
	for l := 0; l < lanesN; l++ {
		if need&(1<<l) == 0 || group[l] != nil {
			continue
		}
		switch st := b.threads[base+l].state; {
		case st == exited:
			// hardware leaves exited members undefined; the simulator does not wait for them
		case x.loose && (st == parkedWarp || st == parkedBar || st == parkedMbar):
			// activemask: lanes waiting elsewhere are not active here
		default:
			return false
		}
	}
	// The lanes leave the collective before it runs, so that a fault
	// inside it can set the state of the offending lane.
	for _, t := range group {
		if t != nil {
			t.state, t.at = running, nil
		}
	}
	x.coll(b, group, x)
	return true
}

// memberMask is the lanes a parked collective waits for: the membermask
// operand of shfl.sync, all 32 lanes for the .aligned ones.
func (t *thread) memberMask() uint32 {
	in := t.at
	if in.e >= 0 {
		return uint32(t.r[in.e])
	}
	return ^uint32(0)
}

// barrier releases bar.sync when every thread that has not exited waits at a
// barrier with the same id (and, with a thread count, that many are waiting).
func (b *block) barrier() bool {
	waiting := 0
	var id uint64
	idSet := false
	for i := range b.threads {
		t := &b.threads[i]
		switch t.state {
		case exited:
			continue
		case parkedBar:
			bid := t.r[t.at.a]
			if idSet && bid != id {
				return false
			}
			id, idSet = bid, true
			waiting++
		default:
			return false
		}
	}
	if waiting == 0 {
		return false
	}
	for i := range b.threads {
		t := &b.threads[i]
		if t.state == parkedBar {
			t.state, t.at = running, nil
		}
	}
	if b.race != nil {
		b.race.epoch++
	}
	return true
}

// deadlock builds the error for a block where no thread can progress.
func (b *block) deadlock() *Fault {
	var sb strings.Builder
	n := len(b.threads)
	var firstAt *inst
	for w := 0; w*32 < n; w++ {
		counts := map[string]int{}
		var keys []string
		for l := 0; l < 32 && w*32+l < n; l++ {
			t := &b.threads[w*32+l]
			var s string
			switch t.state {
			case exited:
				s = "exited"
			case parkedWarp, parkedBar, parkedMbar:
				s = fmt.Sprintf("%s (line %d)", t.at.op, t.at.line)
				if t.state == parkedMbar {
					s += t.waitState()
				}
				if firstAt == nil {
					firstAt = t.at
				}
			default:
				s = "running"
			}
			if counts[s] == 0 {
				keys = append(keys, s)
			}
			counts[s]++
		}
		fmt.Fprintf(&sb, "\n  warp %d:", w)
		for _, s := range keys {
			fmt.Fprintf(&sb, " %d lanes at %s;", counts[s], s)
		}
	}
	return b.newFault(FaultDeadlock, nil, firstAt, 0, 0, "", "no thread can progress:"+sb.String())
}
