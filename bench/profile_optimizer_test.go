package bench

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
)

// fakeStep records the order of the device step's calls and of the
// profiler's synchronizations.
type fakeStep struct {
	optim.DeviceStep
	log *[]string
}

func (f fakeStep) GradNorm(float64) error { *f.log = append(*f.log, "norm"); return nil }
func (f fakeStep) ReadNorm() (float64, bool, error) {
	*f.log = append(*f.log, "read")
	return 2.5, true, nil
}
func (f fakeStep) Step(float64) error { *f.log = append(*f.log, "step"); return nil }

// The device optimizer's calls reach the inner step unchanged, each waited
// for and charged to one family (its kernels bypass the wrapper's calls).
func TestProfiledDeviceStepChargesTheOptimizer(t *testing.T) {
	var log []string
	p := NewProfiledBackend(tensor.CPUDefault(), func() error { log = append(log, "sync"); return nil })
	d := profiledDeviceStep{DeviceStep: fakeStep{log: &log}, p: p}
	if err := d.GradNorm(1); err != nil {
		t.Fatal(err)
	}
	norm, ok, err := d.ReadNorm()
	if err != nil || norm != 2.5 || !ok {
		t.Fatalf("ReadNorm: %g %v %v", norm, ok, err)
	}
	if err := d.Step(1e-4); err != nil {
		t.Fatal(err)
	}
	if want := "norm sync read sync step sync"; join(log) != want {
		t.Errorf("calls %q, want %q", join(log), want)
	}
	fam := p.Families()
	if len(fam) != 1 || fam[0].Family != FamilyDeviceOptimizer || fam[0].Calls != 3 {
		t.Errorf("families %+v", fam)
	}
	if p.Unwrap() != tensor.CPUDefault() {
		t.Error("Unwrap does not give the inner backend")
	}
}

func join(s []string) string { return strings.Join(s, " ") }
