package dist

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// The launchers ftune recognises, by the environment they give each worker.
const (
	launcherOpenMPI = "openmpi" // mpirun/mpiexec of Open MPI: OMPI_COMM_WORLD_*
	launcherHydra   = "hydra"   // mpiexec of MPICH (hydra): PMI_RANK, PMI_SIZE, MPI_LOCALRANKID
	launcherSlurm   = "slurm"   // srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS/SLURM_NTASKS, SLURM_LOCALID
	launcherPMIx    = "pmix"    // a PMIx server alone: PMIX_RANK (the world size comes from MPI)
)

// Launch is what the launcher's environment says about this worker.
type Launch struct {
	Launcher  string // "" when no launcher started this process, else one of the names above
	Rank      int
	Size      int // 0 when the launcher does not say (PMIx alone): MPI tells
	LocalRank int // this worker's index on its machine (its GPU); -1 when the launcher does not say
}

// slurmBatchStep is the step id Slurm gives a batch script itself
// (SLURM_BATCH_SCRIPT, 0xfffffffe): its SLURM_PROCID and SLURM_NTASKS
// describe the allocation, not a worker of a job step.
const slurmBatchStep = "4294967294"

// Detect reads the launcher's variables through getenv (os.Getenv in a
// run; a map in the tests). Launchers are tried in order of precision: an
// MPI launcher's own variables first (inside srun, Open MPI and MPICH
// set theirs too, with the same values), then Slurm's, then bare PMIx.
// A variable that is set but not a valid number is an error naming it.
func Detect(getenv func(string) string) (Launch, error) {
	switch {
	case getenv("OMPI_COMM_WORLD_RANK") != "":
		return parseLaunch(getenv, launcherOpenMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")
	case getenv("PMI_RANK") != "":
		return parseLaunch(getenv, launcherHydra, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID")
	case getenv("SLURM_PROCID") != "" && getenv("SLURM_STEP_ID") != "" && getenv("SLURM_STEP_ID") != slurmBatchStep:
		size := "SLURM_STEP_NUM_TASKS"
		if getenv(size) == "" {
			size = "SLURM_NTASKS"
		}
		return parseLaunch(getenv, launcherSlurm, "SLURM_PROCID", size, "SLURM_LOCALID")
	case getenv("PMIX_RANK") != "":
		return parseLaunch(getenv, launcherPMIx, "PMIX_RANK", "", "")
	}
	return Launch{Size: 1}, nil
}

// parseLaunch reads rank, size and local rank from the named variables; an
// empty size or local name means the launcher does not give it.
func parseLaunch(getenv func(string) string, launcher, rankVar, sizeVar, localVar string) (Launch, error) {
	l := Launch{Launcher: launcher, LocalRank: -1}
	var err error
	if l.Rank, err = envInt(getenv, rankVar, true); err != nil {
		return Launch{}, err
	}
	if sizeVar != "" {
		if l.Size, err = envInt(getenv, sizeVar, true); err != nil {
			return Launch{}, err
		}
		if l.Size < 1 || l.Rank >= l.Size {
			return Launch{}, fmt.Errorf("dist: %s=%d and %s=%d: the rank must lie in [0, size)", rankVar, l.Rank, sizeVar, l.Size)
		}
	}
	if localVar != "" && getenv(localVar) != "" {
		if l.LocalRank, err = envInt(getenv, localVar, false); err != nil {
			return Launch{}, err
		}
	}
	if l.Size == 1 && l.LocalRank < 0 {
		l.LocalRank = 0
	}
	return l, nil
}

func envInt(getenv func(string) string, name string, required bool) (int, error) {
	s := getenv(name)
	if s == "" && required {
		return 0, fmt.Errorf("dist: the launcher set its rank variables but not %s", name)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("dist: %s=%q is not a non-negative integer", name, s)
	}
	return v, nil
}

// timeoutEnv bounds each collective (a Go duration such as "10m"): past it
// the job is declared hung and aborted.
const timeoutEnv = "FTUNE_DIST_TIMEOUT"

// FromEnv opens the world this process belongs to. Without a launcher, or
// with a launcher of one worker, it is Single(). With more workers it opens
// MPI, the library that belongs to the launcher, and checks that MPI sees
// the same world as the launcher. A job of several workers where no MPI
// library opens is an error saying what to install, never a silent
// single-process run (each worker would train alone on the whole data).
func FromEnv() (Comm, Launch, error) {
	l, err := Detect(os.Getenv)
	if err != nil {
		return nil, Launch{}, err
	}
	if l.Launcher == "" || l.Size == 1 {
		return Single(), l, nil
	}
	timeout := DefaultTimeout
	if s := os.Getenv(timeoutEnv); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil || timeout <= 0 {
			return nil, Launch{}, fmt.Errorf("dist: %s=%q is not a positive duration (such as 10m)", timeoutEnv, s)
		}
	}
	lib, err := loadMPI(mpiCandidates(l.Launcher))
	if err != nil {
		return nil, Launch{}, fmt.Errorf("dist: the %s launcher started this process as worker %d of %s, but %w",
			l.Launcher, l.Rank, sizeText(l.Size), err)
	}
	c, err := openMPI(lib, timeout)
	if err != nil {
		return nil, Launch{}, fmt.Errorf("dist: worker %d (%s launcher): %w", l.Rank, l.Launcher, err)
	}
	if c.Rank() != l.Rank || (l.Size != 0 && c.Size() != l.Size) {
		mpiRank, mpiSize := c.Rank(), c.Size()
		c.Close()
		return nil, Launch{}, fmt.Errorf("dist: the %s launcher says worker %d of %s but %s says %d of %d: "+
			"the MPI library does not belong to the launcher (pick it with %s; under srun pass --mpi=pmix or pmi2)",
			l.Launcher, l.Rank, sizeText(l.Size), lib.name, mpiRank, mpiSize, mpiLibraryEnv)
	}
	l.Size = c.Size()
	return c, l, nil
}

func sizeText(size int) string {
	if size == 0 {
		return "an unknown number"
	}
	return strconv.Itoa(size)
}
