package train

import (
	"errors"
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// The optimizer step's two paths. On the host (every CPU run, SGD, data
// parallel runs) the trainer binds the parameters as float32 slices and
// calls optim's code; on a GPU an optim.DeviceStep computes the gradient
// norm, the clip factor and the AdamW update where the tensors live, and
// the step reads back only the norm and the losses, together, once.

// Host optimizer paths, as OptimizerPath names them.
const (
	hostPathCPU = "host: optim's %s on the parameters in place"
	hostPathGPU = "host: optim's %s through host copies of every parameter and gradient each step (%s)"
)

// OptimizerPath says where the optimizer step of a run runs, for logs and
// env.json, and whether that is the device: AdamW on a single worker
// whose trainable parameters are all float32 on one CUDA backend runs on
// the device; anything else runs optim's host code, and the path says why.
func OptimizerPath(opt Optimizer, world int, params map[string]*autograd.Var) (path string, onDevice bool) {
	kind := "optimizer"
	switch opt.(type) {
	case *optim.AdamW:
		kind = "adamw"
	case *optim.SGD:
		kind = "sgd"
	}
	var be tensor.Backend
	for _, name := range sortedNames(params) {
		v := params[name]
		if be != nil && v.Value.Backend() != be {
			return fmt.Sprintf(hostPathGPU, kindName(kind), "the parameters are on more than one device"), false
		}
		be = v.Value.Backend()
		if _, gpu := cudaBackendOf(be); gpu && v.Value.DType() != tensor.F32 {
			return fmt.Sprintf(hostPathGPU, kindName(kind), fmt.Sprintf("parameter %s is %v; the device step takes float32", name, v.Value.DType())), false
		}
	}
	return OptimizerPathFor(be, kind, world)
}

// OptimizerPathFor is OptimizerPath before the parameters exist (for a
// run's env.json): the backend they will live on, the optimizer's name
// ("adamw", "sgd") and the number of workers. Trainable parameters are
// float32 (LoRA's master weights), which OptimizerPath checks.
func OptimizerPathFor(be tensor.Backend, kind string, world int) (path string, onDevice bool) {
	if _, gpu := cudaBackendOf(be); !gpu {
		if be == nil || be.Device().Kind == tensor.CPU {
			return fmt.Sprintf(hostPathCPU, kindName(kind)), false
		}
		return fmt.Sprintf(hostPathGPU, kindName(kind), "backend "+be.Name()+" has no device optimizer step"), false
	}
	switch {
	case kind != "adamw":
		return fmt.Sprintf(hostPathGPU, kindName(kind), "only AdamW has a device kernel"), false
	case world > 1:
		return fmt.Sprintf(hostPathGPU, kindName(kind), "data-parallel steps all-reduce host copies of the gradients"), false
	}
	return cudabackend.FusedOptimizerPath, true
}

// BackendWrapper is a backend that passes its calls through to another
// (bench.ProfiledBackend, which times them): its tensors' storages are the
// inner backend's, so the device optimizer step sees the GPU through it.
type BackendWrapper interface {
	Unwrap() tensor.Backend
}

// cudaBackendOf is the CUDA backend be is or wraps (through any number of
// BackendWrappers).
func cudaBackendOf(be tensor.Backend) (*cudabackend.Backend, bool) {
	for be != nil {
		if cb, ok := be.(*cudabackend.Backend); ok {
			return cb, true
		}
		w, ok := be.(BackendWrapper)
		if !ok {
			return nil, false
		}
		be = w.Unwrap()
	}
	return nil, false
}

func kindName(kind string) string {
	switch kind {
	case "adamw":
		return "AdamW"
	case "sgd":
		return "SGD"
	}
	return kind
}

// OptimizerPath is where this trainer's optimizer step runs: while Fit
// runs, the path it took; before, the one it will take (see the function
// OptimizerPath; a DeviceStep factory set on the trainer decides instead).
func (t *Trainer) OptimizerPath() string {
	if t.optPath != "" {
		return t.optPath
	}
	size, _ := t.world()
	if t.DeviceStep != nil && size == 1 {
		return "the DeviceStep set on the trainer (the host when it gives none)"
	}
	path, _ := OptimizerPath(t.Opt, size, t.Params)
	return path
}

func sortedNames(params map[string]*autograd.Var) []string {
	t := Trainer{Params: params}
	return t.names()
}

// newDeviceStep returns the device step for this run, or nil for the host.
func (t *Trainer) newDeviceStep() (optim.DeviceStep, error) {
	size, _ := t.world()
	if size > 1 {
		return nil, nil
	}
	if t.DeviceStep != nil {
		return t.DeviceStep(t)
	}
	return BackendDeviceStep(t)
}

// BackendDeviceStep is the device step Fit takes when Trainer.DeviceStep
// is unset: the fused AdamW of the parameters' CUDA backend when
// OptimizerPath says the device, else nil (the host path). A DeviceStep
// factory that wraps the default (a profiler's) calls it.
func BackendDeviceStep(t *Trainer) (optim.DeviceStep, error) {
	size, _ := t.world()
	if _, ok := OptimizerPath(t.Opt, size, t.Params); !ok || size > 1 {
		return nil, nil
	}
	adam := t.Opt.(*optim.AdamW)
	names := t.names()
	cb, _ := cudaBackendOf(t.Params[names[0]].Value.Backend())
	cfg := adam.Config()
	sizes, wd, scale := make([]int, len(names)), make([]float64, len(names)), make([]float64, len(names))
	for i, n := range names {
		sizes[i] = t.Params[n].Value.Numel()
		wd[i], scale[i] = cfg.DecayOf(n), cfg.LRScaleOf(n)
	}
	bind := func() (values, grads []*tensor.Tensor) {
		for _, n := range names {
			v := t.Params[n]
			values, grads = append(values, v.Value), append(grads, v.Grad)
		}
		return values, grads
	}
	f, err := cb.NewFusedAdamW(names, sizes, cudabackend.FusedAdamWConfig{Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: wd, LRScale: scale}, bind)
	if err != nil {
		return nil, err
	}
	return fusedAdamW{f}, nil
}

// fusedAdamW is cudabackend's FusedAdamW as an optim.DeviceStep (the
// backend knows nothing of optim's types).
type fusedAdamW struct{ f *cudabackend.FusedAdamW }

func (d fusedAdamW) Describe() string                 { return cudabackend.FusedOptimizerPath }
func (d fusedAdamW) GradNorm(maxNorm float64) error   { return d.f.GradNorm(maxNorm) }
func (d fusedAdamW) ReadNorm() (float64, bool, error) { return d.f.ReadNorm() }
func (d fusedAdamW) Step(lr float64) error            { return d.f.Step(lr) }
func (d fusedAdamW) ParamsFinite() (bool, error)      { return d.f.ParamsFinite() }

func (d fusedAdamW) State() (optim.State, error) {
	ms, err := d.f.Export()
	if err != nil {
		return optim.State{}, err
	}
	st := optim.State{Kind: "adamw"}
	for _, m := range ms {
		st.Params = append(st.Params, optim.ParamState{Name: m.Name, Step: m.Step, M: m.M, V: m.V})
	}
	return st, nil
}

func (d fusedAdamW) LoadState(st optim.State) error {
	if st.Kind != "adamw" {
		return fmt.Errorf("device adamw load state: %w: state is for %q", optim.ErrStateMismatch, st.Kind)
	}
	ms := make([]cudabackend.ParamMoments, len(st.Params))
	for i, p := range st.Params {
		ms[i] = cudabackend.ParamMoments{Name: p.Name, Step: p.Step, M: p.M, V: p.V}
	}
	if err := d.f.Import(ms); err != nil {
		return fmt.Errorf("device adamw load state: %w", err)
	}
	return nil
}

// onDevice stands in for the host optimizer in Trainer.Opt while Fit
// runs a device step, so that checkpoints (which call Opt.State) copy the
// device state to the host, and only then.
type onDevice struct {
	host Optimizer
	dev  optim.DeviceStep
	// err is a failed State copy: State cannot return it, so the step
	// that follows the callbacks fails with it.
	err error
}

func (o *onDevice) Step([]optim.Param) error {
	return errors.New("train: the device optimizer step binds the parameters itself (Step of host slices)")
}
func (o *onDevice) SetLR(lr float64) { o.host.SetLR(lr) }
func (o *onDevice) State() optim.State {
	st, err := o.dev.State()
	if err != nil {
		o.err = fmt.Errorf("train: copy the device optimizer state to the host: %w", err)
		return optim.State{Kind: "unreadable device state"}
	}
	return st
}
func (o *onDevice) LoadState(st optim.State) error { return o.dev.LoadState(st) }

// startDeviceStep moves the optimizer to the device when the run's path
// is the device: the host optimizer's state (fresh, or loaded from a
// checkpoint) is uploaded and Opt stands for the device until
// endDeviceStep copies the state back.
func (t *Trainer) startDeviceStep() error {
	if _, ok := t.Opt.(*onDevice); ok {
		return nil
	}
	dev, err := t.newDeviceStep()
	if err != nil {
		return err
	}
	if dev == nil {
		size, _ := t.world()
		t.optPath, _ = OptimizerPath(t.Opt, size, t.Params)
		if _, would := OptimizerPath(t.Opt, size, t.Params); would && t.DeviceStep != nil {
			t.optPath = "host: optim's AdamW (the DeviceStep set on the trainer gave none)"
		}
		return nil
	}
	if err := dev.LoadState(t.Opt.State()); err != nil {
		return fmt.Errorf("train: optimizer state to the device: %w", err)
	}
	t.dev, t.Opt, t.optPath = dev, &onDevice{host: t.Opt, dev: dev}, dev.Describe()
	return nil
}

// endDeviceStep gives Opt back to the host optimizer with the device's
// state, so that the trainer's optimizer after Fit is what it was given,
// up to date.
func (t *Trainer) endDeviceStep() error {
	t.optPath = ""
	o, ok := t.Opt.(*onDevice)
	if !ok {
		return nil
	}
	t.Opt, t.dev = o.host, nil
	st, err := o.dev.State()
	if err != nil {
		return fmt.Errorf("train: copy the device optimizer state to the host: %w", err)
	}
	return o.host.LoadState(st)
}

// deviceStateErr reports a failed state copy during the callbacks.
func (t *Trainer) deviceStateErr() error {
	if o, ok := t.Opt.(*onDevice); ok && o.err != nil {
		return o.err
	}
	return nil
}

// collapsedBefore is the error for a non-finite parameter found by the
// device step's check of step, read a step late: the parameters are read
// to the host (only now: the run is failing) to name the tensor.
func (t *Trainer) collapsedBefore(step int) error {
	name := "a trainable tensor"
	if n, ok := nonFinite(t.bind()); !ok {
		name = n
	}
	return fmt.Errorf("%w: step %d left non-finite values in %s (found by the device check read with the next step); %s", ErrCollapsed, step, name, t.lowerLR())
}

// pendingLoss is a micro-batch's loss kept on the device until the step
// reads it with the gradient norm.
type pendingLoss struct {
	v     *tensor.Tensor
	share float64
}

// readLosses returns the sum of the step's micro-batch losses (each times
// its share); after ReadNorm the queue is empty, so this waits for nothing.
func (t *Trainer) readLosses() (float64, error) {
	var sum float64
	var errs []error
	for _, l := range t.losses {
		sum += l.v.Item() * l.share
		errs = append(errs, tensor.Release(l.v)) // read: dead now
	}
	t.losses = t.losses[:0]
	return sum, errors.Join(errs...)
}
