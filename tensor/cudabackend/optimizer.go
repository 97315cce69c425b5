package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// FusedAdamW is the trainer's AdamW step on the device: the global gradient
// norm, the clip factor and the update of every parameter run as a few
// multi-tensor launches (kernels/cuda adamw.cu) and the clip factor never
// leaves the device. The host reads back 24 bytes per step (ReadNorm): the
// norm, which the trainer's guards need, and the finiteness check of the
// previous update.
//
// Semantics are optim.AdamW's (torch.optim.AdamW): decoupled weight decay
// per parameter, bias correction by each parameter's own step count, eps
// after the bias-corrected sqrt(v), clipping by maxNorm/(norm+1e-6) when
// that is below 1. The kernels differ from the host code only in rounding
// (float32 sums in another order, fused multiply-adds, m and v as
// multiply-adds where torch uses lerp and addcmul, sqrt(v/bc2) for
// sqrt(v)/sqrt(bc2)) and for a NaN norm, where the kernel's clip factor
// is 1 and the host's NaN: the trainer skips such steps before either
// update runs.
//
// The kernel takes one learning rate, one weight decay and one step count
// per launch, so the parameters are launched in groups of equal (decay,
// step, learning-rate factor); a run without NoDecay names, LoRA+ or
// parameters that miss gradients is one group.
type FusedAdamW struct {
	b                 *Backend
	names             []string
	sizes             []int64
	wd, lrScale       []float64
	beta1, beta2, eps float64
	bind              func() (values, grads []*tensor.Tensor)

	m, v  []*tensor.Tensor // nil until a parameter's first step
	steps []int
	// extra is imported state for names this optimizer does not hold,
	// exported again unchanged (as the host optimizer keeps it).
	extra []ParamMoments

	// scalars: sumsq, norm, clip scale of the gradients; sumsq, norm and
	// scale of the parameters (the finiteness check).
	scalars *tensor.Tensor

	valuePtrs []cuda.Ptr                  // the tables below point at these
	lists     map[string]*cuda.TensorList // update lists by group
	norms     map[string]*cuda.TensorList // gradient-norm lists by active set
	paramList *cuda.TensorList            // every parameter, for the check

	active      []int            // parameters with a gradient this step
	gradPtrs    []cuda.Ptr       // by parameter (0: none)
	grads       []*tensor.Tensor // this step's gradients, kept alive
	normQueued  bool
	clip        bool
	checkQueued bool
}

// FusedAdamWConfig is the host optimizer's configuration as the device
// step takes it: WeightDecay holds each parameter's decay, in the order of
// the names (0 for those the host's NoDecay exempts), and LRScale each
// parameter's factor of the learning rate (the host's LRScaleOf; nil: 1
// each).
type FusedAdamWConfig struct {
	Beta1, Beta2, Eps float64
	WeightDecay       []float64
	LRScale           []float64
}

// ParamMoments is one parameter's AdamW state on the host (for
// checkpoints): its step count and float32 moments.
type ParamMoments struct {
	Name string
	Step int
	M, V []float32
}

// ErrOptimizerState is returned (wrapped) when imported state does not fit
// the parameters.
var ErrOptimizerState = errors.New("optimizer state does not fit the parameters")

// FusedOptimizerPath names the device optimizer for logs and env.json.
const FusedOptimizerPath = "device AdamW: multi-tensor adamw_fwd_f32, gradient norm and clip factor on the device (gradnorm_fwd_f32, clipscale_fwd_f32), one 24-byte readback per step"

// NewFusedAdamW prepares the device step for the parameters names (sizes
// in elements). bind returns, in the order of names, every parameter's
// value and this step's gradient (nil: none); it is called by GradNorm.
func (b *Backend) NewFusedAdamW(names []string, sizes []int, cfg FusedAdamWConfig, bind func() (values, grads []*tensor.Tensor)) (*FusedAdamW, error) {
	n := len(names)
	if n == 0 || len(sizes) != n || len(cfg.WeightDecay) != n || cfg.LRScale != nil && len(cfg.LRScale) != n || bind == nil {
		return nil, fmt.Errorf("cuda: fused AdamW: %d names, %d sizes, %d weight decays, %d learning-rate factors (want one each, at least one; no factors: 1 each)", n, len(sizes), len(cfg.WeightDecay), len(cfg.LRScale))
	}
	lrScale := cfg.LRScale
	if lrScale == nil {
		lrScale = make([]float64, n)
		for i := range lrScale {
			lrScale[i] = 1
		}
	}
	seen := make(map[string]bool, n)
	f := &FusedAdamW{b: b, names: append([]string(nil), names...), sizes: make([]int64, n), wd: append([]float64(nil), cfg.WeightDecay...), lrScale: append([]float64(nil), lrScale...),
		beta1: cfg.Beta1, beta2: cfg.Beta2, eps: cfg.Eps, bind: bind,
		m: make([]*tensor.Tensor, n), v: make([]*tensor.Tensor, n), steps: make([]int, n), gradPtrs: make([]cuda.Ptr, n)}
	for i, name := range names {
		if name == "" || seen[name] {
			return nil, fmt.Errorf("cuda: fused AdamW: parameter %d name %q empty or repeated", i, name)
		}
		seen[name] = true
		f.sizes[i] = int64(sizes[i])
	}
	f.lists, f.norms = map[string]*cuda.TensorList{}, map[string]*cuda.TensorList{}
	f.scalars = tensor.Zeros(b, tensor.F32, 6)
	return f, nil
}

// bindStep resolves this step's tensors: the values must be the float32
// contiguous tensors the tables were built for (rebuilt when they moved).
func (f *FusedAdamW) bindStep() error {
	values, grads := f.bind()
	if len(values) != len(f.names) || len(grads) != len(f.names) {
		return fmt.Errorf("cuda: fused AdamW: bind gave %d values and %d gradients for %d parameters", len(values), len(grads), len(f.names))
	}
	ptrs := make([]cuda.Ptr, len(values))
	f.active, f.grads = f.active[:0], grads
	for i, v := range values {
		if err := f.checkOperand(i, "value", v); err != nil {
			return err
		}
		p, err := f.b.ptr(v)
		if err != nil {
			return fmt.Errorf("fused AdamW: parameter %q: %w", f.names[i], err)
		}
		ptrs[i] = p
		f.gradPtrs[i] = 0
		if g := grads[i]; g != nil {
			if err := f.checkOperand(i, "gradient", g); err != nil {
				return err
			}
			if f.gradPtrs[i], err = f.b.ptr(g); err != nil {
				return fmt.Errorf("fused AdamW: gradient of %q: %w", f.names[i], err)
			}
			f.active = append(f.active, i)
		}
	}
	if !samePtrs(ptrs, f.valuePtrs) {
		if err := f.dropLists(); err != nil {
			return err
		}
		f.valuePtrs = ptrs
	}
	return nil
}

func (f *FusedAdamW) checkOperand(i int, what string, t *tensor.Tensor) error {
	if t == nil || t.DType() != tensor.F32 || !t.IsContiguous() || int64(t.Numel()) != f.sizes[i] {
		return fmt.Errorf("cuda: fused AdamW: %s of %q: want a contiguous float32 tensor of %d elements, have %v", what, f.names[i], f.sizes[i], t)
	}
	return nil
}

func samePtrs(a, b []cuda.Ptr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// scalar is the address of f.scalars[i].
func (f *FusedAdamW) scalar(i int) (cuda.Ptr, error) {
	p, err := f.b.ptr(f.scalars)
	return p.Add(4 * i), err
}

// GradNorm binds this step's gradients and queues their global L2 norm
// and, when maxNorm > 0, the clip factor min(1, maxNorm/(norm+1e-6)) that
// the next Step applies. Nothing is read back.
func (f *FusedAdamW) GradNorm(maxNorm float64) error {
	if err := f.bindStep(); err != nil {
		return err
	}
	d := f.b.dev
	sumsq, err := f.scalar(0)
	if err != nil {
		return err
	}
	f.clip, f.normQueued = maxNorm > 0, true
	if len(f.active) == 0 { // no gradient: norm 0, scale 1 (as optim.GradNorm)
		if err := d.Memset32Async(f.b.s, sumsq, 0, 2); err != nil {
			return err
		}
		return d.Memset32Async(f.b.s, sumsq.Add(8), math.Float32bits(1), 1)
	}
	key := indexKey(f.active)
	l := f.norms[key]
	if l == nil {
		if len(f.norms) >= 16 { // groups come and go: keep the tables bounded
			if err := f.dropLists(); err != nil {
				return err
			}
		}
		if l, err = d.NewTensorList(nil, pick(f.gradPtrs, f.active), nil, nil, pick(f.sizes, f.active)); err != nil {
			return fmt.Errorf("cuda: fused AdamW: gradient list: %w", err)
		}
		f.norms[key] = l
	} else if err := l.SetGrads(f.b.s, pick(f.gradPtrs, f.active)); err != nil {
		return err
	}
	mn := float32(0)
	if f.clip {
		mn = float32(maxNorm)
	}
	defer keep(f.grads...)
	return d.GradNorm(f.b.s, l, sumsq, sumsq.Add(4), sumsq.Add(8), mn)
}

// ReadNorm waits for the norm queued by GradNorm and returns it, with
// paramsFinite false when the update queued by the previous Step left a
// non-finite value (or one whose square overflows float32, |x| > 1.8e19)
// in a parameter. It is the step's one synchronisation.
func (f *FusedAdamW) ReadNorm() (norm float64, paramsFinite bool, err error) {
	if !f.normQueued {
		return 0, false, fmt.Errorf("cuda: fused AdamW: ReadNorm before GradNorm")
	}
	h, err := f.readScalars()
	if err != nil {
		return 0, false, err
	}
	paramsFinite = !f.checkQueued || finite32(h[3])
	f.checkQueued = false
	return float64(h[1]), paramsFinite, nil
}

// ParamsFinite reads the check queued by the last Step now (a
// synchronisation; true when none is pending).
func (f *FusedAdamW) ParamsFinite() (bool, error) {
	if !f.checkQueued {
		return true, nil
	}
	h, err := f.readScalars()
	if err != nil {
		return false, err
	}
	f.checkQueued = false
	return finite32(h[3]), nil
}

func (f *FusedAdamW) readScalars() ([]float32, error) {
	h := make([]float32, 6)
	if err := f.b.ToHost(f.scalars, h); err != nil {
		return nil, fmt.Errorf("fused AdamW: read back the norm: %w", err)
	}
	return h, nil
}

func finite32(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// Step queues the update of every parameter that had a gradient at
// GradNorm, at learning rate lr, gradients multiplied by the clip factor
// when GradNorm clipped; then the finiteness check of the parameters,
// read by the next ReadNorm or ParamsFinite.
func (f *FusedAdamW) Step(lr float64) error {
	if !f.normQueued {
		return fmt.Errorf("cuda: fused AdamW: Step without GradNorm (it binds the gradients)")
	}
	f.normQueued = false
	d := f.b.dev
	scale, err := f.scalar(2)
	if err != nil {
		return err
	}
	if !f.clip {
		scale = 0 // the kernel's "no scaling"
	}
	defer keep(f.grads...)
	for _, i := range f.active {
		if f.m[i] == nil {
			f.m[i] = tensor.Zeros(f.b, tensor.F32, int(f.sizes[i]))
			f.v[i] = tensor.Zeros(f.b, tensor.F32, int(f.sizes[i]))
		}
		f.steps[i]++
	}
	for _, g := range groupByDecayAndStep(f.active, f.wd, f.lrScale, f.steps) {
		key := indexKey(g.idx)
		l := f.lists[key]
		if l == nil {
			mp, vp := make([]cuda.Ptr, len(g.idx)), make([]cuda.Ptr, len(g.idx))
			for j, i := range g.idx {
				if mp[j], err = f.b.ptr(f.m[i]); err != nil {
					return err
				}
				if vp[j], err = f.b.ptr(f.v[i]); err != nil {
					return err
				}
			}
			if l, err = d.NewTensorList(pick(f.valuePtrs, g.idx), pick(f.gradPtrs, g.idx), mp, vp, pick(f.sizes, g.idx)); err != nil {
				return fmt.Errorf("cuda: fused AdamW: update list: %w", err)
			}
			f.lists[key] = l
		} else if err := l.SetGrads(f.b.s, pick(f.gradPtrs, g.idx)); err != nil {
			return err
		}
		c := cuda.AdamWConfig{LR: float32(lr * g.lrScale), Beta1: float32(f.beta1), Beta2: float32(f.beta2), Eps: float32(f.eps), WeightDecay: float32(g.wd), Step: g.step}
		if err := d.AdamW(f.b.s, l, scale, c); err != nil {
			return fmt.Errorf("cuda: fused AdamW: %w", err)
		}
	}
	if f.paramList == nil {
		if f.paramList, err = d.NewTensorList(nil, f.valuePtrs, nil, nil, f.sizes); err != nil {
			return fmt.Errorf("cuda: fused AdamW: parameter list: %w", err)
		}
	}
	psum, err := f.scalar(3)
	if err != nil {
		return err
	}
	if err := d.GradNorm(f.b.s, f.paramList, psum, psum.Add(4), psum.Add(8), 0); err != nil {
		return err
	}
	f.checkQueued = true
	return nil
}

// dropLists frees every pointer table (the tensors stay); they are built
// again on demand.
func (f *FusedAdamW) dropLists() error {
	var errs []error
	for _, l := range f.lists {
		errs = append(errs, l.Free())
	}
	for _, l := range f.norms {
		errs = append(errs, l.Free())
	}
	if f.paramList != nil {
		errs = append(errs, f.paramList.Free())
	}
	f.lists, f.norms, f.paramList = map[string]*cuda.TensorList{}, map[string]*cuda.TensorList{}, nil
	return errors.Join(errs...)
}

// Export copies the state to the host (for a checkpoint): every parameter
// that has taken a step, in the order of the names, then imported state of
// other names unchanged.
func (f *FusedAdamW) Export() ([]ParamMoments, error) {
	var out []ParamMoments
	for i, name := range f.names {
		if f.m[i] == nil {
			continue
		}
		pm := ParamMoments{Name: name, Step: f.steps[i], M: make([]float32, f.sizes[i]), V: make([]float32, f.sizes[i])}
		if err := f.b.ToHost(f.m[i], pm.M); err != nil {
			return nil, fmt.Errorf("fused AdamW: export %q: %w", name, err)
		}
		if err := f.b.ToHost(f.v[i], pm.V); err != nil {
			return nil, fmt.Errorf("fused AdamW: export %q: %w", name, err)
		}
		out = append(out, pm)
	}
	for _, e := range f.extra {
		out = append(out, ParamMoments{Name: e.Name, Step: e.Step, M: append([]float32(nil), e.M...), V: append([]float32(nil), e.V...)})
	}
	return out, nil
}

// Import replaces the state with st (from Export or a checkpoint). Every
// entry for one of the parameters must have moments of its size; entries
// for other names are kept and exported again. On error nothing changed.
func (f *FusedAdamW) Import(st []ParamMoments) error {
	idx := make(map[string]int, len(f.names))
	for i, n := range f.names {
		idx[n] = i
	}
	m, v, steps := make([]*tensor.Tensor, len(f.names)), make([]*tensor.Tensor, len(f.names)), make([]int, len(f.names))
	var extra []ParamMoments
	seen := map[string]bool{}
	for _, p := range st {
		if seen[p.Name] {
			return fmt.Errorf("fused AdamW import: %w: parameter %q appears twice", ErrOptimizerState, p.Name)
		}
		seen[p.Name] = true
		i, ok := idx[p.Name]
		if !ok {
			extra = append(extra, ParamMoments{Name: p.Name, Step: p.Step, M: append([]float32(nil), p.M...), V: append([]float32(nil), p.V...)})
			continue
		}
		if int64(len(p.M)) != f.sizes[i] || int64(len(p.V)) != f.sizes[i] || p.Step < 0 {
			return fmt.Errorf("fused AdamW import: %w: parameter %q has %d elements, its state m %d, v %d, step %d", ErrOptimizerState, p.Name, f.sizes[i], len(p.M), len(p.V), p.Step)
		}
		m[i] = tensor.FromHost(f.b, tensor.F32, p.M, len(p.M))
		v[i] = tensor.FromHost(f.b, tensor.F32, p.V, len(p.V))
		steps[i] = p.Step
	}
	f.m, f.v, f.steps, f.extra = m, v, steps, extra
	return f.dropLists() // the update lists pointed at the old moments
}

// group is parameters updated by one launch: equal weight decay, step
// and learning-rate factor.
type group struct {
	wd, lrScale float64
	step        int
	idx         []int
}

// groupByDecayAndStep splits the active parameters (indices, ascending)
// into launches of equal (weight decay, step count, learning-rate
// factor), in a fixed order.
func groupByDecayAndStep(active []int, wd, lrScale []float64, steps []int) []group {
	var out []group
	pos := map[[3]float64]int{}
	for _, i := range active {
		k := [3]float64{wd[i], float64(steps[i]), lrScale[i]}
		j, ok := pos[k]
		if !ok {
			j = len(out)
			pos[k] = j
			out = append(out, group{wd: wd[i], lrScale: lrScale[i], step: steps[i]})
		}
		out[j].idx = append(out[j].idx, i)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].idx[0] < out[b].idx[0] })
	return out
}

func indexKey(idx []int) string {
	var sb strings.Builder
	for _, i := range idx {
		sb.WriteString(strconv.Itoa(i))
		sb.WriteByte(',')
	}
	return sb.String()
}

func pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = xs[i]
	}
	return out
}
