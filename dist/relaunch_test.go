package dist

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestWithoutNprocDropsEverySpelling(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"train", "--nproc-per-node", "2", "--max-steps", "3"}, []string{"train", "--max-steps", "3"}},
		{[]string{"train", "-nproc-per-node=4"}, []string{"train"}},
		{[]string{"--nproc-per-node=2", "train", "-nproc-per-node", "2"}, []string{"train"}},
		{[]string{"train", "--", "--nproc-per-node", "2"}, []string{"train", "--", "--nproc-per-node", "2"}},
		{[]string{"train", "--nproc-per-nodes", "2"}, []string{"train", "--nproc-per-nodes", "2"}},
	} {
		if got := withoutNproc(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("withoutNproc(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRelaunchRefusals(t *testing.T) {
	if _, err := Relaunch(1, nil); err == nil || !strings.Contains(err.Error(), "2 or more") {
		t.Errorf("Relaunch(1) error = %v", err)
	}
	t.Setenv("OMPI_COMM_WORLD_RANK", "0")
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	if _, err := Relaunch(2, nil); err == nil || !strings.Contains(err.Error(), "already started this process as worker 0 of 2") {
		t.Errorf("Relaunch under mpirun: error = %v", err)
	}
	t.Setenv("OMPI_COMM_WORLD_RANK", "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Relaunch(2, nil); err == nil || !strings.Contains(err.Error(), "apt-get install openmpi-bin") {
		t.Errorf("Relaunch without mpirun: error = %v, want one saying what to install", err)
	}
}

// Relaunch's command starts working workers: here the test binary itself,
// in its collectives child mode, through the same FromEnv path as a run.
func TestRelaunchStartsTwoWorkers(t *testing.T) {
	openMPIForTest(t)
	if p := findMPIRun("Open MPI", "mpirun"); p == "" {
		t.Skip("mpirun on PATH is not Open MPI's")
	}
	cmd, err := Relaunch(2, []string{"--nproc-per-node", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if exe, _ := os.Executable(); cmd.Args[len(cmd.Args)-1] != exe || !slices.Contains(cmd.Args, "-np") {
		t.Errorf("command %q: want mpirun ... -np 2 %s, --nproc-per-node removed", cmd.Args, exe)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(cmd.Env, childEnv+"=collectives")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%q: %v\n%s", cmd.Args, err, out.String())
	}
	for _, want := range []string{"rank 0 of 2: collectives ok", "rank 1 of 2: collectives ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
