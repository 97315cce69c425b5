package train

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
)

// A checkpoint is a folder step-NNNNNNNN holding params.safetensors (the
// trainable tensors), optimizer.safetensors (moments, step counts in the
// metadata), trainer.json (loop state, loader position, random streams)
// and checksums.sha256 (every other file's sha256, checked on load).
// It is written into a temporary folder and renamed, so a crash leaves
// either the whole checkpoint or none.
const (
	paramsFile    = "params.safetensors"
	optimizerFile = "optimizer.safetensors"
	stateFile     = "trainer.json"
)

type checkpointState struct {
	Version int               `json:"version"`
	State   State             `json:"state"`
	Kind    string            `json:"optimizer"`
	RNG     map[string][]byte `json:"rng,omitempty"`
	Losses  []float64         `json:"losses"`
	// Callbacks holds each StatefulCallback's state by its StateKey
	// (absent in checkpoints written before 2027-01: those callbacks
	// then start afresh on resume).
	Callbacks map[string]json.RawMessage `json:"callbacks,omitempty"`
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// stateViewer is an Optimizer that lends its state without copying it
// (optim.AdamW, optim.SGD: StateView).
type stateViewer interface{ StateView() optim.State }

// StepDir is the folder name of the checkpoint at step.
func StepDir(step int) string { return fmt.Sprintf("step-%08d", step) }

// SaveCheckpoint writes the trainer's state under root/step-N atomically and
// returns the folder. A full file system is reported as such (the
// checkpoint is not kept; earlier ones are untouched).
func SaveCheckpoint(root string, t *Trainer, extra func(dir string) error) (string, error) {
	dir, err := saveCheckpoint(root, t, extra)
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.ENOSPC || errno == syscall.EDQUOT) {
		// The cause without the temporary files' paths it was writing.
		then := "it is not kept, and no checkpoint was saved before it: free space, then start again"
		if prev := Checkpoints(root); len(prev) > 0 {
			then = fmt.Sprintf("it is not kept; the checkpoints before it are intact (the newest: %s): free space or keep fewer checkpoints, then resume", filepath.Base(prev[len(prev)-1]))
		}
		return "", fmt.Errorf("train: the checkpoint of step %d does not fit in %s: %w (%s)", t.State.Step, root, errno, then)
	}
	return dir, err
}

func saveCheckpoint(root string, t *Trainer, extra func(dir string) error) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	final := filepath.Join(root, StepDir(t.State.Step))
	tmp, err := mkdirTemp(root, ".tmp-"+StepDir(t.State.Step)+"-")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // the new folder until the rename; the replaced one after it
	// Each tensor's bytes are made as the file is written (Fill), not all
	// at once: trained embeddings (modules_to_save) and their optimizer
	// moments are gigabytes, which a checkpoint would otherwise copy
	// whole on top of a training run's memory.
	var params []safetensors.Tensor
	for _, name := range t.names() {
		v := t.Params[name]
		params = append(params, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: v.Value.Shape().Clone(),
			Fill: func() ([]byte, error) { return f32Bytes(v.Value.F32()), nil }})
	}
	if err := safetensors.Write(filepath.Join(tmp, paramsFile), params, nil); err != nil {
		return "", err
	}
	st := t.Opt.State()
	if v, ok := t.Opt.(stateViewer); ok {
		st = v.StateView() // written below, before the next step
	}
	var opt []safetensors.Tensor
	steps := map[string]string{}
	for _, ps := range st.Params {
		steps[ps.Name] = strconv.Itoa(ps.Step)
		for suffix, x := range map[string][]float32{".m": ps.M, ".v": ps.V} {
			if x != nil {
				opt = append(opt, safetensors.Tensor{Name: ps.Name + suffix, DType: safetensors.F32, Shape: []int{len(x)},
					Fill: func() ([]byte, error) { return f32Bytes(x), nil }})
			}
		}
	}
	stepsJSON, _ := json.Marshal(steps)
	if err := safetensors.Write(filepath.Join(tmp, optimizerFile), opt, map[string]string{"kind": st.Kind, "steps": string(stepsJSON)}); err != nil {
		return "", err
	}
	cs := checkpointState{Version: 1, State: t.State, Kind: st.Kind, Losses: t.State.Losses}
	cs.State.Epoch, cs.State.BatchIndex = t.Train.Position()
	if t.RNG != nil {
		if cs.RNG, err = t.RNG.SaveRNG(); err != nil {
			return "", err
		}
	}
	if cs.Callbacks, err = saveCallbackStates(t); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(cs, "", " ")
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, stateFile), js, 0o644); err != nil {
		return "", err
	}
	if extra != nil {
		if err := extra(tmp); err != nil {
			return "", err
		}
	}
	if err := writeChecksums(tmp); err != nil {
		return "", err
	}
	if err := replaceDir(tmp, final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	return final, nil
}

// mkdirTemp makes a new folder root/prefix<n> as os.MkdirTemp does, but
// with mode 0755 less the umask, as any other folder ftune writes
// (MkdirTemp's are private, 0700). The name ends in digits, which the
// leftovers a resume removes (track.removeLeftovers) are matched by.
func mkdirTemp(root, prefix string) (string, error) {
	for range 10000 {
		dir := filepath.Join(root, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := os.Mkdir(dir, 0o755)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			return dir, err
		}
	}
	return "", fmt.Errorf("mkdir %s: %w", filepath.Join(root, prefix+"*"), fs.ErrExist)
}

// exchange is exchangeDirs, replaced by tests to take the other path.
var exchange = exchangeDirs

// beforeReplace, when set (by tests), runs between the two renames of a
// checkpoint that replaces one of the same step on a system without an
// atomic exchange: a process killed there is what it simulates.
var beforeReplace func(final string)

// replaceDir puts the folder tmp at final. A folder already at final (a
// re-save of the same step) is never removed before the new one is in
// place: the two are exchanged atomically where the system can
// (exchangeDirs), else the old one is renamed aside first, so a process
// killed in between leaves it under a temporary name and the step's
// checkpoint missing (the previous checkpoint resumes), never neither.
// Either way the old folder ends at tmp, which the caller removes.
func replaceDir(tmp, final string) error {
	err := os.Rename(tmp, final)
	if err == nil || !dirExists(final) {
		return err
	}
	if exchange(tmp, final) == nil {
		return nil
	}
	aside := tmp + "-old"
	if err := os.Rename(final, aside); err != nil {
		return err
	}
	if beforeReplace != nil {
		beforeReplace(final)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Rename(aside, final)
		return err
	}
	return os.Rename(aside, tmp)
}

// restoreAside puts back a checkpoint that replaceDir renamed aside
// (.tmp-step-N-<n>-old) when the process was killed before the new one
// took its place: no step-N folder exists then.
func restoreAside(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, ".tmp-step-") || !strings.HasSuffix(name, "-old") || len(name) < len(".tmp-")+len(StepDir(0)) {
			continue
		}
		final := filepath.Join(root, name[len(".tmp-"):len(".tmp-")+len(StepDir(0))])
		if !dirExists(final) {
			_ = os.Rename(filepath.Join(root, name), final)
		}
	}
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// Checkpoints lists root's checkpoints, oldest first.
func Checkpoints(root string) []string {
	entries, _ := os.ReadDir(root)
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// Prune keeps the newest keepLast checkpoints plus the steps in keep.
func Prune(root string, keepLast int, keep map[int]bool) error {
	if keepLast <= 0 {
		return nil
	}
	all := Checkpoints(root)
	for i, dir := range all {
		if i >= len(all)-keepLast {
			break
		}
		step, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "step-"))
		if keep[step] {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoCheckpoint means a folder holds no usable checkpoint.
var ErrNoCheckpoint = errors.New("train: no checkpoint")

// ResumeLatest loads the newest checkpoint under root that reads back
// completely; a corrupt newer one is reported through warn and skipped.
func ResumeLatest(root string, t *Trainer, warn func(string)) (string, error) {
	restoreAside(root)
	all := Checkpoints(root)
	for i := len(all) - 1; i >= 0; i-- {
		err := LoadCheckpoint(all[i], t)
		if err == nil {
			return all[i], nil
		}
		if warn != nil {
			warn(fmt.Sprintf("checkpoint %s is unusable (%v); trying the previous one", all[i], err))
		}
	}
	return "", ErrNoCheckpoint
}

// LoadCheckpoint restores parameters, optimizer, loop state, loader position
// and random streams. Everything is read and checked before anything is
// changed.
func LoadCheckpoint(dir string, t *Trainer) error {
	if err := verifyChecksums(dir); err != nil {
		return err
	}
	raw, err := fsutil.ReadFileLimit(filepath.Join(dir, stateFile), checkpointMetaLimit)
	if err != nil {
		return err
	}
	var cs checkpointState
	if err := json.Unmarshal(raw, &cs); err != nil {
		return fmt.Errorf("%s: %w", stateFile, err)
	}
	pf, err := safetensors.Open(filepath.Join(dir, paramsFile))
	if err != nil {
		return err
	}
	defer pf.Close()
	values := map[string][]float32{}
	for _, name := range t.names() {
		st, err := pf.Tensor(name)
		if err != nil {
			return fmt.Errorf("%s: %w", paramsFile, err)
		}
		if !tensor.Shape(st.Shape).Equal(t.Params[name].Value.Shape()) || st.DType != safetensors.F32 {
			return fmt.Errorf("%s: tensor %q is %s%v, want F32%v", paramsFile, name, st.DType, st.Shape, t.Params[name].Value.Shape())
		}
		values[name] = bytesF32(st.Data)
	}
	of, err := safetensors.Open(filepath.Join(dir, optimizerFile))
	if err != nil {
		return err
	}
	defer of.Close()
	md := of.Metadata()
	steps := map[string]string{}
	if err := json.Unmarshal([]byte(md["steps"]), &steps); err != nil {
		return fmt.Errorf("%s: steps metadata: %w", optimizerFile, err)
	}
	os := optim.State{Kind: md["kind"]}
	for _, name := range sortedKeys(steps) {
		n, _ := strconv.Atoi(steps[name])
		ps := optim.ParamState{Name: name, Step: n}
		if of.Has(name + ".m") {
			st, _ := of.Tensor(name + ".m")
			ps.M = bytesF32(st.Data)
		}
		if of.Has(name + ".v") {
			st, _ := of.Tensor(name + ".v")
			ps.V = bytesF32(st.Data)
		}
		os.Params = append(os.Params, ps)
	}
	if err := t.Opt.LoadState(os); err != nil {
		return err
	}
	for name, v := range values {
		p := t.Params[name].Value
		if p.Device().Kind == tensor.CPU && p.DType() == tensor.F32 {
			copy(tensor.F32Data(p), v)
		} else {
			p.CopyFrom(tensor.FromHost(p.Backend(), tensor.F32, v, p.Shape()...).To(p.DType()))
		}
	}
	t.State = cs.State
	t.State.Losses = cs.Losses
	if l, ok := t.Train.(interface{ Seek(int, int) }); ok {
		l.Seek(cs.State.Epoch, cs.State.BatchIndex)
	}
	if t.RNG != nil && cs.RNG != nil {
		if err := t.RNG.LoadRNG(cs.RNG); err != nil {
			return err
		}
	}
	// Last: a callback's state may refer to the restored State (the
	// Checkpointer's last saved step is the checkpoint's).
	return restoreCallbackStates(t, cs.Callbacks)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
