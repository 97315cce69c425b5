package dist

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// NprocFlag is the CLI flag that starts several workers on this machine.
const NprocFlag = "nproc-per-node"

// Relaunch returns the command that runs this program again as nproc
// workers on this machine: `mpirun -np nproc <this executable> <args>`,
// with every --nproc-per-node removed from args so the workers do not
// relaunch themselves. Each worker then finds its rank in mpirun's
// environment (FromEnv), exactly as under `mpirun -np N ftune ...` typed by
// hand: one code path. Without mpirun it is an error saying what to
// install; under a launcher already it is an error (two ways of asking
// for workers that may disagree). The caller runs the command with the
// terminal attached and exits with its status.
func Relaunch(nproc int, args []string) (*exec.Cmd, error) {
	if nproc < 2 {
		return nil, fmt.Errorf("dist: --%s %d: relaunch is for 2 or more workers", NprocFlag, nproc)
	}
	if l, err := Detect(os.Getenv); err == nil && l.Launcher != "" {
		return nil, fmt.Errorf("dist: --%s %d, but the %s launcher already started this process as worker %d of %s: use one or the other",
			NprocFlag, nproc, l.Launcher, l.Rank, sizeText(l.Size))
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		return nil, fmt.Errorf("dist: --%s %d starts the workers with mpirun, which is not on PATH: %s", NprocFlag, nproc, installHint)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("dist: --%s: cannot find this program to relaunch: %v", NprocFlag, err)
	}
	cmd, err := MPIRunCommand(mpirun, nproc, exe, withoutNproc(args))
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd, nil
}

// MPIRunCommand is `<mpirun> -np np <exe> <args>` with the flags and
// environment that mpirun's flavour needs to start ftune's workers on this
// machine (Open MPI: openMPIArgs and openMPIEnv; MPICH's hydra: none). An
// mpirun of neither flavour is an error.
func MPIRunCommand(mpirun string, np int, exe string, args []string) (*exec.Cmd, error) {
	version, _ := exec.Command(mpirun, "--version").CombinedOutput()
	var flags []string
	switch {
	case strings.Contains(string(version), "Open MPI"):
		flags = openMPIArgs()
	case strings.Contains(string(version), "HYDRA"):
		// MPICH's hydra needs no flags: it oversubscribes, runs as root and
		// leaves the workers unbound by default.
	default:
		return nil, fmt.Errorf("dist: %s is neither Open MPI's nor MPICH's mpirun (its --version: %q)", mpirun, firstLine(string(version)))
	}
	cmd := exec.Command(mpirun, append(append(flags, "-np", fmt.Sprint(np), exe), args...)...)
	cmd.Env = append(os.Environ(), openMPIEnv()...)
	return cmd, nil
}

// openMPIArgs are the flags Open MPI's mpirun needs for ftune's workers on
// one machine: --oversubscribe (more workers than cores is allowed: the
// tests run 2 on 2 shared cores), --bind-to none (Open MPI binds each
// worker to one core by default, and Go then sets GOMAXPROCS to 1 in it),
// and --allow-run-as-root when running as root (containers, CI).
func openMPIArgs() []string {
	args := []string{"--oversubscribe", "--bind-to", "none"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-run-as-root")
	}
	return args
}

// openMPIEnv is the environment Open MPI's workers need: the root
// permission again (mpirun checks the flag, the workers the variables)
// and no single-copy shared memory (CMA), which needs ptrace permission
// that containers usually withhold.
func openMPIEnv() []string {
	env := []string{"OMPI_MCA_btl_vader_single_copy_mechanism=none"}
	if os.Geteuid() == 0 {
		env = append(env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	return env
}

// withoutNproc drops --nproc-per-node N, --nproc-per-node=N and their
// single-dash spellings (Go's flag package accepts both), up to a "--".
func withoutNproc(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case name == NprocFlag:
			i++ // and its value
		case strings.HasPrefix(name, NprocFlag+"="):
		default:
			out = append(out, a)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
