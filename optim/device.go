package optim

// DeviceStep is an optimizer step that runs where the parameters live (a
// GPU), bound to the parameters when it is made, so that no parameter,
// gradient or moment crosses to the host inside a step. The host code in
// this package stays the reference it is tested against and the path of
// every other device.
//
// One step is GradNorm, ReadNorm, then Step unless the caller skips the
// step (a non-finite norm or loss); a skipped step changes nothing.
type DeviceStep interface {
	// Describe names the path for logs and the run's env.json.
	Describe() string
	// GradNorm binds this step's gradients and queues their global L2
	// norm and, when maxNorm > 0, ClipGradNorm's factor
	// min(1, maxNorm/(norm+1e-6)), kept on the device for Step. Nothing is
	// read back.
	GradNorm(maxNorm float64) error
	// ReadNorm waits for the norm and returns it (the one synchronisation
	// of a step), and whether the previous Step left every parameter
	// finite: that check is queued after the update and read here, a step
	// late, so that it costs no synchronisation of its own.
	ReadNorm() (norm float64, paramsFinite bool, err error)
	// Step queues the update at learning rate lr of the parameters that
	// had a gradient at GradNorm, the gradients multiplied by the clip
	// factor when GradNorm clipped.
	Step(lr float64) error
	// ParamsFinite reads the check queued by the last Step now (true when
	// none is pending); a run calls it before it ends.
	ParamsFinite() (bool, error)
	// State copies the optimizer state to the host, in the form and with
	// the values the host optimizer's State would give.
	State() (State, error)
	// LoadState replaces the state with st; on error nothing changed.
	LoadState(st State) error
}
