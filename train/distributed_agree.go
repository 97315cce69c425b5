package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Before the first step the workers check that they are about to train
// the same thing. Workers that differ in their options, data or base
// would otherwise each run the collectives of its own schedule: the
// job trains a mix of the runs to completion without a word, or ends in
// an abort with no reason once one worker runs out of steps or of
// batches before the others.
//
// Each worker reduces every Agreement (the trainer's own settings and
// starting point, then DataParallel.Agree, which the caller fills in:
// the configuration, the data, the base) to a digest. Rank 0's digests
// are broadcast, each worker compares them with its own, and a sum
// all-reduce of one flag per worker and agreement tells every worker who
// differs in what. Only then, and on every worker alike, is the first
// differing rank's detail exchanged (rank 0's and that rank's fields, by
// two broadcasts each), so every worker returns the same error, naming
// the rank and what differs ("rank 1's training.optimizer.lr 0.02,
// rank 0's 0.002"). The sequence of collectives does not depend on what a
// worker holds, only on what every worker learned from the all-reduce:
// a worker that differs never leaves the others waiting.

// ErrWorkersDiffer is what CheckInSync's error wraps when the workers
// differ. Every worker returns it, after the same collectives, so the
// job may end with every worker finalising rather than aborting, and one
// of them (the CLI: rank 0) saying why.
var ErrWorkersDiffer = errors.New("train: the workers differ")

// workersDiffer is an error that is ErrWorkersDiffer.
type workersDiffer struct{ msg string }

func (e workersDiffer) Error() string        { return e.msg }
func (e workersDiffer) Is(target error) bool { return target == ErrWorkersDiffer }

// Agreement is one thing every worker must hold the same of to train
// together (DataParallel.Agree).
type Agreement struct {
	// What names it in the plural, for "... differ": "the
	// configurations", "the training data", "the base models".
	What string
	// Fields are its settings by name: where they differ the error names
	// the first keys that do, with both workers' values.
	Fields map[string]string
	// Digest stands for what has no fields worth naming (a hash of the
	// data, a fingerprint of the base); the error shows its start.
	Digest string
}

// sum is the agreement's digest as the workers compare it.
func (a Agreement) sum() [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", a.What, len(a.Fields))
	for _, k := range slices.Sorted(maps.Keys(a.Fields)) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, a.Fields[k])
	}
	h.Write([]byte(a.Digest))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// CheckInSync refuses to train when the workers differ in anything they
// must agree on (see Agreement); every worker must call it, at the same
// point. Fit calls it before its first step; a caller that runs other
// collectives before Fit (a validation pass) calls it first, so that
// workers with different data do not reach them with different numbers
// of batches. With one worker it does nothing.
func (t *Trainer) CheckInSync() error {
	if size, _ := t.world(); size == 1 {
		return nil
	}
	return t.checkInSync()
}

// agreements is what this worker compares: the caller's (the
// configuration, data and base) first, then the trainer's settings and
// starting point.
func (t *Trainer) agreements() []Agreement {
	out := slices.Clone(t.DP.Agree)
	settings := map[string]string{
		"max steps":   fmt.Sprint(t.Cfg.MaxSteps),
		"max epochs":  fmt.Sprint(t.Cfg.MaxEpochs),
		"grad accum":  fmt.Sprint(t.Cfg.GradAccum),
		"lr":          fmt.Sprint(t.Cfg.LR),
		"clip norm":   fmt.Sprint(t.Cfg.ClipNorm),
		"eval every":  fmt.Sprint(t.Cfg.EvalEvery),
		"val batches": fmt.Sprint(t.Cfg.ValMaxBatches),
	}
	if t.Train != nil {
		settings["training batches per epoch"] = fmt.Sprint(t.Train.Len())
	}
	settings["validation batches"] = "0" // validation is sharded: a collective per batch
	if t.Val != nil {
		settings["validation batches"] = fmt.Sprint(t.Val.Len())
	}
	// The parameters' names and shapes fix the gradient buckets' sizes.
	shapes := sha256.New()
	values := 0
	for _, name := range t.names() {
		v := t.Params[name].Value
		fmt.Fprintf(shapes, "%s%v\x00", name, v.Shape())
		values += v.Numel()
	}
	settings["parameters"] = fmt.Sprintf("%d tensors, %d values (shapes %s)", len(t.Params), values, hex.EncodeToString(shapes.Sum(nil))[:12])
	out = append(out, Agreement{What: "the trainer settings", Fields: settings})

	epoch, index := t.Train.Position()
	var sum float64
	for _, name := range t.names() {
		for i, v := range t.Params[name].Value.F32() {
			sum += float64(v) * float64(i%7+1)
		}
	}
	out = append(out, Agreement{What: "the starting points", Fields: map[string]string{
		"step": fmt.Sprint(t.State.Step), "epoch": fmt.Sprint(epoch), "batch": fmt.Sprint(index),
		"parameter values": fmt.Sprintf("%016x", math.Float64bits(sum)),
	}})
	return out
}

// checkInSync is CheckInSync with more than one worker.
func (t *Trainer) checkInSync() error {
	size, rank := t.Comm.Size(), t.Comm.Rank()
	fail := func(err error) error {
		return fmt.Errorf("train: comparing the workers' settings, data and starting points: %w", err)
	}
	mine := t.agreements()
	// Rank 0's count first: a worker of another ftune could compare a
	// different list, and the digests' broadcast must have one length.
	count := make([]byte, 8)
	binary.LittleEndian.PutUint64(count, uint64(len(mine)))
	if err := t.Comm.Broadcast(count, 0); err != nil {
		return fail(err)
	}
	n := int(binary.LittleEndian.Uint64(count))
	if n > 1<<10 {
		return fmt.Errorf("train: rank 0 compares %d things before training: the workers run different programs", n)
	}
	root := make([]byte, sha256.Size*n)
	if rank == 0 {
		for i, a := range mine {
			s := a.sum()
			copy(root[i*sha256.Size:], s[:])
		}
	}
	if err := t.Comm.Broadcast(root, 0); err != nil {
		return fail(err)
	}
	// One row per worker: a flag per agreement, then one for a different
	// list of agreements.
	row := n + 1
	differ := make([]float64, size*row)
	if len(mine) != n {
		differ[rank*row+n] = 1
	}
	for i := range min(n, len(mine)) {
		if s := mine[i].sum(); string(s[:]) != string(root[i*sha256.Size:(i+1)*sha256.Size]) {
			differ[rank*row+i] = 1
		}
	}
	if err := t.Comm.AllReduceSumF64(differ); err != nil {
		return fail(err)
	}
	first, differing := -1, 0
	for r := range size {
		if slices.ContainsFunc(differ[r*row:(r+1)*row], func(f float64) bool { return f > 0 }) {
			differing++
			if first < 0 {
				first = r
			}
		}
	}
	if first < 0 {
		return nil
	}
	flags := differ[first*row : (first+1)*row]
	if flags[n] > 0 {
		return workersDiffer{fmt.Sprintf("train: rank %d compares a different list of things than rank 0 before training (%d of %d workers differ): every worker must run the same ftune", first, differing, size)}
	}
	// Every worker learns rank 0's and the first differing rank's detail
	// of what differs, and so builds the same message.
	var which []int
	for i := range n {
		if flags[i] > 0 {
			which = append(which, i)
		}
	}
	theirs, err := t.shareAgreements(mine, which, first)
	if err != nil {
		return fail(err)
	}
	ours, err := t.shareAgreements(mine, which, 0)
	if err != nil {
		return fail(err)
	}
	var parts []string
	for _, i := range which {
		parts = append(parts, describeDifference(first, ours[i], theirs[i]))
	}
	others := ""
	if differing > 1 {
		others = fmt.Sprintf(" (%d of %d workers differ from rank 0; the first is shown)", differing, size)
	}
	return workersDiffer{fmt.Sprintf("train: rank %d differs from rank 0 before training%s: %s; every worker must run the same options on the same data, base and checkpoint",
		first, others, strings.Join(parts, "; "))}
}

// shareAgreements broadcasts root's agreements numbered which to every
// worker: their length, then their JSON.
func (t *Trainer) shareAgreements(mine []Agreement, which []int, root int) (map[int]Agreement, error) {
	var buf []byte
	if t.Comm.Rank() == root {
		sel := map[int]Agreement{}
		for _, i := range which {
			sel[i] = mine[i]
		}
		var err error
		if buf, err = json.Marshal(sel); err != nil {
			return nil, err
		}
	}
	size := make([]byte, 8)
	binary.LittleEndian.PutUint64(size, uint64(len(buf)))
	if err := t.Comm.Broadcast(size, root); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(size)
	if n > 64<<20 {
		return nil, fmt.Errorf("rank %d's settings take %d bytes", root, n)
	}
	if t.Comm.Rank() != root {
		buf = make([]byte, n)
	}
	if err := t.Comm.Broadcast(buf, root); err != nil {
		return nil, err
	}
	out := map[int]Agreement{}
	if err := json.Unmarshal(buf, &out); err != nil {
		return nil, fmt.Errorf("rank %d's settings: %w", root, err)
	}
	return out, nil
}

// describeDifference says how rank's agreement differs from rank 0's:
// "the configurations differ: rank 1's training.optimizer.lr 0.02,
// rank 0's 0.002", up to three fields, else the digests' start.
func describeDifference(rank int, root, other Agreement) string {
	const most = 3
	what := root.What
	if what == "" {
		what = other.What
	}
	var diffs []string
	keys := slices.Sorted(maps.Keys(root.Fields))
	for k := range maps.Keys(other.Fields) {
		if _, ok := root.Fields[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	value := func(m map[string]string, k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return "(not set)"
	}
	total := 0
	for _, k := range keys {
		a, b := value(root.Fields, k), value(other.Fields, k)
		if a == b {
			continue
		}
		total++
		if len(diffs) < most {
			diffs = append(diffs, fmt.Sprintf("rank %d's %s %s, rank 0's %s", rank, k, b, a))
		}
	}
	if total > most {
		diffs = append(diffs, fmt.Sprintf("and %d more", total-most))
	}
	if root.Digest != other.Digest {
		diffs = append(diffs, fmt.Sprintf("rank %d's %s, rank 0's %s", rank, short(other.Digest), short(root.Digest)))
	}
	if len(diffs) == 0 {
		return what + " differ"
	}
	return what + " differ: " + strings.Join(diffs, ", ")
}

// short is a digest's first 12 characters, enough to tell two apart.
func short(d string) string {
	if d == "" {
		return "(none)"
	}
	if len(d) > 12 {
		return d[:12] + "…"
	}
	return d
}
