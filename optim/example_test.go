package optim_test

import (
	"fmt"

	"github.com/ftune/ftune/optim"
)

// A training loop's optimizer part: schedule, clip, step. With a gradient
// of constant sign each Adam step moves w by about the learning rate, so w
// ends near 1 - 0.1·Σ multipliers = 1 - 0.1·5.0 = 0.5 (less a little decay).
func Example() {
	w := []float32{1, -1}
	g := make([]float32, 2)
	params := []optim.Param{{Name: "w", Data: w, Grad: g}}
	cfg := optim.DefaultAdamW()
	cfg.LR = 0.1
	opt, _ := optim.NewAdamW(cfg)
	sched := optim.CosineWithWarmup(1, 10, 0.5)
	for step := 0; step < 10; step++ {
		for i := range w { // f(w) = Σ w², ∂f/∂w = 2w
			g[i] = 2 * w[i]
		}
		optim.ClipGradNorm(params, 1.0)
		opt.SetLR(cfg.LR * sched.LR(step))
		opt.Step(params)
	}
	fmt.Printf("w = [%.3f %.3f], lr multiplier at the end %.3f\n", w[0], w[1], sched.LR(10))
	// Output:
	// w = [0.496 -0.496], lr multiplier at the end 0.000
}
