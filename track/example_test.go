package track_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/track"
)

func Example() {
	root, _ := os.MkdirTemp("", "runs")
	defer os.RemoveAll(root)

	run, err := track.NewRun(root, "first", []byte("training:\n  optimizer:\n    lr: 0.0002\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for step := 1; step <= 3; step++ {
		run.Log(step, map[string]float64{"train/loss": 2.0 / float64(step)})
	}
	run.Log(3, map[string]float64{"val/loss": 0.9})
	run.LogText(3, "samples/0", "Q: 2+2? A: 4")
	run.Close()

	runs, _ := track.List(root)
	for _, r := range runs {
		fmt.Println(r.Name, r.Status, r.Steps, r.Final["val/loss"])
	}
	events, _ := track.EventFiles(filepath.Join(run.Dir, track.TensorBoard))
	fmt.Println(len(events), "event file")
	// Output:
	// first finished 3 0.9
	// 1 event file
}
