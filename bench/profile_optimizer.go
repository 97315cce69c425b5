package bench

import (
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// Unwrap is the backend the profiler passes its calls to: the trainer's
// optimizer-path choice looks through it (train.BackendWrapper), so a
// profiled step on a GPU still runs AdamW on the device.
func (p *ProfiledBackend) Unwrap() tensor.Backend { return p.Backend }

// Optimizer families of the profile.
const (
	FamilyDeviceOptimizer = "optimizer (device: norm, clip, AdamW)"
	FamilyHostOptimizer   = "optimizer (host)"
)

// withinSynced charges fn to family and, when profiling a device, waits for it
// there: the device step's kernels run on the inner backend, unseen by the
// wrapper's own calls.
func (p *ProfiledBackend) withinSynced(family string, fn func() error) error {
	return p.Within(family, func() error {
		err := fn()
		if err == nil && p.Sync != nil {
			err = p.Sync()
		}
		return err
	})
}

// ProfiledDeviceStep is a train.Trainer DeviceStep factory: the device
// step the backend gives the run (train.BackendDeviceStep, what Fit takes
// unprofiled), its norm, clip and update charged to one family.
func ProfiledDeviceStep(p *ProfiledBackend) func(*train.Trainer) (optim.DeviceStep, error) {
	return func(t *train.Trainer) (optim.DeviceStep, error) {
		d, err := train.BackendDeviceStep(t)
		if d == nil || err != nil {
			return nil, err
		}
		return profiledDeviceStep{DeviceStep: d, p: p}, nil
	}
}

type profiledDeviceStep struct {
	optim.DeviceStep
	p *ProfiledBackend
}

func (d profiledDeviceStep) GradNorm(maxNorm float64) error {
	return d.p.withinSynced(FamilyDeviceOptimizer, func() error { return d.DeviceStep.GradNorm(maxNorm) })
}

func (d profiledDeviceStep) ReadNorm() (norm float64, ok bool, err error) {
	err = d.p.withinSynced(FamilyDeviceOptimizer, func() error { norm, ok, err = d.DeviceStep.ReadNorm(); return err })
	return norm, ok, err
}

func (d profiledDeviceStep) Step(lr float64) error {
	return d.p.withinSynced(FamilyDeviceOptimizer, func() error { return d.DeviceStep.Step(lr) })
}

// ProfiledOptimizer charges a host optimizer's Step (with the copies to
// and from a device it makes) to FamilyHostOptimizer. Only for a run on
// the host path: the device path's choice looks for optim's AdamW itself.
type ProfiledOptimizer struct {
	train.Optimizer
	P *ProfiledBackend
}

func (o ProfiledOptimizer) Step(ps []optim.Param) error {
	return o.P.withinSynced(FamilyHostOptimizer, func() error { return o.Optimizer.Step(ps) })
}

// The profiler must stay a BackendWrapper, or a profiled GPU step would
// fall back to the host optimizer.
var _ train.BackendWrapper = (*ProfiledBackend)(nil)
