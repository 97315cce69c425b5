package train_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// hostAsDevice is an optim.DeviceStep on CPU tensors that does what the
// host path does with optim's code, so the trainer's device-path
// bookkeeping (the norm read once, losses read after it, the clip left to
// the step, the finiteness check read a step late, the state moved to the
// "device" and back) must give the host path's run bit for bit.
type hostAsDevice struct {
	t        *train.Trainer
	opt      *optim.AdamW
	clip     float64
	params   []optim.Param
	norm     float64
	checked  bool
	finite   bool
	reads    int
	nanAt    int // ReadNorm call (1-based) that reports a NaN norm; 0: none
	poisonAt int // Step call (1-based) whose check reports a non-finite parameter
	steps    int
	loads    int
}

func newHostAsDevice(t *train.Trainer) (optim.DeviceStep, error) {
	opt, err := optim.NewAdamW(t.Opt.(*optim.AdamW).Config())
	return &hostAsDevice{t: t, opt: opt}, err
}

func (d *hostAsDevice) Describe() string { return "test: host code as a device" }

func (d *hostAsDevice) GradNorm(maxNorm float64) error {
	d.params, d.clip = d.params[:0], maxNorm
	for _, name := range sortedKeys(d.t.Params) {
		v := d.t.Params[name]
		p := optim.Param{Name: name, Data: tensor.F32Data(v.Value)}
		if v.Grad != nil {
			p.Grad = tensor.F32Data(v.Grad)
		}
		d.params = append(d.params, p)
	}
	d.norm = optim.GradNorm(d.params)
	return nil
}

func (d *hostAsDevice) ReadNorm() (float64, bool, error) {
	d.reads++
	ok := !d.checked || d.finite
	d.checked = false
	if d.reads == d.nanAt {
		return math.NaN(), ok, nil
	}
	return d.norm, ok, nil
}

func (d *hostAsDevice) Step(lr float64) error {
	d.steps++
	if d.clip > 0 {
		if _, err := optim.ClipGradNorm(d.params, d.clip); err != nil {
			return err
		}
	}
	d.opt.SetLR(lr)
	if err := d.opt.Step(d.params); err != nil {
		return err
	}
	d.checked, d.finite = true, d.steps != d.poisonAt
	return nil
}

func (d *hostAsDevice) ParamsFinite() (bool, error) {
	ok := !d.checked || d.finite
	d.checked = false
	return ok, nil
}

func (d *hostAsDevice) State() (optim.State, error) { return d.opt.State(), nil }
func (d *hostAsDevice) LoadState(st optim.State) error {
	d.loads++
	return d.opt.LoadState(st)
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func sameRun(t *testing.T, what string, a, b *train.Trainer) {
	t.Helper()
	if len(a.State.Losses) != len(b.State.Losses) || len(a.State.Losses) == 0 {
		t.Fatalf("%s: %d losses against %d", what, len(a.State.Losses), len(b.State.Losses))
	}
	for i := range a.State.Losses {
		if math.Float64bits(a.State.Losses[i]) != math.Float64bits(b.State.Losses[i]) {
			t.Fatalf("%s: step %d loss %v against %v", what, i+1, a.State.Losses[i], b.State.Losses[i])
		}
	}
	for name, v := range a.Params {
		x, y := v.Value.F32(), b.Params[name].Value.F32()
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s: %s[%d] %v against %v", what, name, i, x[i], y[i])
			}
		}
	}
}

// The device path's bookkeeping equals the host path bit for bit, with
// clipping active (ClipNorm 1 clips these gradients) and inactive, and the
// optimizer handed back after Fit holds the state the device ended with.
func TestDeviceStepBookkeepingMatchesHost(t *testing.T) {
	for _, clip := range []float64{1, 1e6} {
		host, _ := newRun(t, 8)
		host.Cfg.ClipNorm = clip
		if err := host.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		dev, _ := newRun(t, 8)
		dev.Cfg.ClipNorm = clip
		var fake *hostAsDevice
		dev.DeviceStep = func(tr *train.Trainer) (optim.DeviceStep, error) {
			d, err := newHostAsDevice(tr)
			fake = d.(*hostAsDevice)
			return d, err
		}
		if err := dev.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		sameRun(t, fmt.Sprintf("clip %g", clip), host, dev)
		if fake.reads != 8 || fake.steps != 8 || fake.loads != 1 {
			t.Errorf("clip %g: %d norm reads, %d steps, %d state loads; want 8, 8, 1", clip, fake.reads, fake.steps, fake.loads)
		}
		if _, ok := dev.Opt.(*optim.AdamW); !ok {
			t.Fatalf("after Fit, Opt is %T, want the *optim.AdamW it was given", dev.Opt)
		}
		hs, ds := host.Opt.State(), dev.Opt.State()
		if len(hs.Params) != len(ds.Params) || ds.Params[0].Step != 8 {
			t.Fatalf("state after Fit: %d params (step %d), host %d", len(ds.Params), ds.Params[0].Step, len(hs.Params))
		}
	}
}

// A checkpoint taken inside Fit copies the device state to the host, and a
// run resumed from it on the device ends where the straight run ends.
func TestDeviceStepResumeIsExact(t *testing.T) {
	straight, _ := newRun(t, 12)
	straight.DeviceStep = newHostAsDevice
	if err := straight.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, _ := newRun(t, 12)
	first.DeviceStep = newHostAsDevice
	first.Callbacks = []train.Callback{&saveAt{step: 6, dir: dir, t: t}}
	if err := first.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, _ := newRun(t, 12)
	second.DeviceStep = newHostAsDevice
	if _, err := train.ResumeLatest(dir, second, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	if second.State.Step != 6 {
		t.Fatalf("resumed at step %d, want 6", second.State.Step)
	}
	if err := second.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameRun(t, "resumed", straight, second)
}

// saveAt writes a checkpoint after one step, from inside Fit (where Opt
// stands for the device).
type saveAt struct {
	train.Base
	step int
	dir  string
	t    *testing.T
}

func (s *saveAt) OnStepEnd(tr *train.Trainer, _ train.Metrics) error {
	if tr.State.Step != s.step {
		return nil
	}
	if !strings.HasPrefix(tr.OptimizerPath(), "test:") {
		s.t.Errorf("inside Fit the optimizer path is %q, want the device step's", tr.OptimizerPath())
	}
	_, err := train.SaveCheckpoint(s.dir, tr, nil)
	return err
}

// A NaN norm read from the device skips the step (no update, counted) as
// on the host; a non-finite parameter found by the check read a step late
// fails the run naming the step that made it, also when it was the last.
func TestDeviceStepGuards(t *testing.T) {
	tr, _ := newRun(t, 5)
	var fake *hostAsDevice
	tr.DeviceStep = func(x *train.Trainer) (optim.DeviceStep, error) {
		d, err := newHostAsDevice(x)
		fake = d.(*hostAsDevice)
		fake.nanAt = 2
		return d, err
	}
	if err := tr.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr.State.SkippedSteps != 1 || fake.steps != 5 || fake.reads != 6 {
		t.Errorf("NaN norm at the 2nd read: %d skipped, %d updates, %d reads; want 1, 5, 6", tr.State.SkippedSteps, fake.steps, fake.reads)
	}
	for _, poison := range []int{3, 5} {
		tr, _ := newRun(t, 5)
		tr.DeviceStep = func(x *train.Trainer) (optim.DeviceStep, error) {
			d, err := newHostAsDevice(x)
			d.(*hostAsDevice).poisonAt = poison
			return d, err
		}
		err := tr.Fit(context.Background())
		want := fmt.Sprintf("step %d left non-finite values", poison)
		if !errors.Is(err, train.ErrCollapsed) || !strings.Contains(err.Error(), want) {
			t.Errorf("update %d poisoned: got %v, want ErrCollapsed saying %q", poison, err, want)
		}
	}
}

// The path is chosen from where the parameters live and the optimizer: on
// the CPU it is optim's host code, whatever the optimizer.
func TestOptimizerPathOnTheCPU(t *testing.T) {
	tr, _ := newRun(t, 1)
	path, dev := train.OptimizerPath(tr.Opt, 1, tr.Params)
	if dev || path != "host: optim's AdamW on the parameters in place" {
		t.Errorf("AdamW on the CPU: %q, device %v", path, dev)
	}
	sgd, err := optim.NewSGD(optim.SGDConfig{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if path, dev := train.OptimizerPath(sgd, 2, tr.Params); dev || !strings.Contains(path, "SGD") {
		t.Errorf("SGD on the CPU: %q, device %v", path, dev)
	}
	if got := tr.OptimizerPath(); got != "host: optim's AdamW on the parameters in place" {
		t.Errorf("trainer's path %q", got)
	}
	tr.DeviceStep = newHostAsDevice
	if got := tr.OptimizerPath(); !strings.HasPrefix(got, "the DeviceStep set on the trainer") {
		t.Errorf("with a DeviceStep set: %q", got)
	}
	// A factory that gives none keeps the host path, and says so in Fit.
	seen := &pathAt{}
	tr.DeviceStep = func(*train.Trainer) (optim.DeviceStep, error) { return nil, nil }
	tr.Callbacks = []train.Callback{seen}
	if err := tr.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seen.path != "host: optim's AdamW on the parameters in place" {
		t.Errorf("in Fit with a factory that gave none: %q", seen.path)
	}
	if _, ok := tr.Opt.(*optim.AdamW); !ok {
		t.Errorf("Opt after Fit %T", tr.Opt)
	}
}

type pathAt struct {
	train.Base
	path string
}

func (p *pathAt) OnTrainStart(t *train.Trainer) error {
	p.path = t.OptimizerPath()
	return nil
}
