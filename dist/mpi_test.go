package dist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests start the test binary itself as two MPI workers: TestMain
// sees childEnv and runs the named child instead of the tests.
const childEnv = "FTUNE_DIST_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// mpiLauncher is one MPI installation to test with: its mpirun and the
// arguments it needs to start np workers on this machine.
type mpiLauncher struct {
	name, mpirun string
	args         []string
}

// openMPIForTest finds Open MPI's mpirun and libmpi.so.40, or skips
// saying what to install (.ci/run installs them, so CI runs these tests).
func openMPIForTest(t *testing.T) mpiLauncher {
	t.Helper()
	mpirun := findMPIRun("Open MPI", "mpirun.openmpi", "mpirun")
	if _, err := loadMPI(mpiCandidates(launcherOpenMPI)); mpirun == "" || err != nil {
		t.Skip("Open MPI not installed (apt-get install openmpi-bin: mpirun and libmpi.so.40); .ci/run installs it")
	}
	return mpiLauncher{name: "Open MPI", mpirun: mpirun, args: openMPIArgs()}
}

func findMPIRun(flavor string, names ...string) string {
	for _, name := range names {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, _ := exec.Command(path, "--version").CombinedOutput()
		if strings.Contains(string(out), flavor) {
			return path
		}
	}
	return ""
}

// runWorkers starts np copies of the test binary in child mode under the
// launcher and returns their combined output, wall time and exit error.
// limit bounds the whole job: a job still running then is a hang.
func runWorkers(t *testing.T, l mpiLauncher, mode string, np int, limit time.Duration, extraEnv ...string) (string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	args := append(append([]string{}, l.args...), "-np", fmt.Sprint(np), os.Args[0])
	cmd := exec.CommandContext(ctx, l.mpirun, args...)
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), extraEnv...)
	cmd.Env = append(cmd.Env, openMPIEnv()...)
	// On a hang, SIGTERM lets mpirun take its workers down with it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%s -np %d (%s) still running after %v: a hang\n%s", l.name, np, mode, limit, out)
	}
	return string(out), elapsed, err
}

func TestMPICollectivesAcrossTwoWorkers(t *testing.T) {
	l := openMPIForTest(t)
	checkCollectives(t, l)
}

// MPICH's ABI (integer handles, MPI_IN_PLACE = -1) is checked where MPICH
// is installed beside Open MPI; CI installs Open MPI only.
func TestMPICHCollectivesAcrossTwoWorkers(t *testing.T) {
	mpirun := findMPIRun("HYDRA", "mpirun.mpich", "mpiexec.hydra")
	if _, err := loadMPI(mpiCandidates(launcherHydra)); mpirun == "" || err != nil {
		t.Skip("MPICH not installed (apt-get install mpich: mpirun.mpich and libmpich.so.12)")
	}
	checkCollectives(t, mpiLauncher{name: "MPICH", mpirun: mpirun})
}

func checkCollectives(t *testing.T, l mpiLauncher) {
	out, elapsed, err := runWorkers(t, l, "collectives", 2, 60*time.Second)
	if err != nil {
		t.Fatalf("%s -np 2 failed: %v\n%s", l.name, err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2: collectives ok", r); !strings.Contains(out, want) {
			t.Errorf("%s output lacks %q:\n%s", l.name, want, out)
		}
	}
	t.Logf("%s, 2 workers, %v:\n%s", l.name, elapsed.Round(time.Millisecond), out)
}

// A worker killed in the middle of the job ends the whole job, in bounded
// time, with the dead rank named: Open MPI's mpirun kills the survivors
// when one worker dies.
func TestMPIDeadWorkerEndsTheJob(t *testing.T) {
	l := openMPIForTest(t)
	out, elapsed, err := runWorkers(t, l, "die", 2, 60*time.Second)
	if err == nil {
		t.Fatalf("the job with a killed worker exited 0:\n%s", out)
	}
	if !strings.Contains(out, "rank 1") {
		t.Errorf("mpirun's report does not name rank 1:\n%s", out)
	}
	t.Logf("killed rank 1: job ended after %v with %v:\n%s", elapsed.Round(time.Millisecond), err, out)
}

// A worker that stops calling collectives (hung, not dead) ends the job
// once the others' collective times out: they abort it, naming the call.
func TestMPIHungWorkerEndsTheJob(t *testing.T) {
	l := openMPIForTest(t)
	out, elapsed, err := runWorkers(t, l, "hang", 2, 60*time.Second, timeoutEnv+"=2s")
	if err == nil {
		t.Fatalf("the job with a hung worker exited 0:\n%s", out)
	}
	if want := "mpi rank 0: MPI_Allreduce(MPI_FLOAT) did not complete within 2s"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	t.Logf("hung rank 1: job ended after %v with %v:\n%s", elapsed.Round(time.Millisecond), err, out)
}
