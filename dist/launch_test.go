package dist

import (
	"strings"
	"testing"
)

func TestDetectLaunchers(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Launch
	}{
		{"no launcher", nil, Launch{Size: 1}},
		{"open mpi", map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1"},
			Launch{Launcher: "openmpi", Rank: 3, Size: 8, LocalRank: 1}},
		{"open mpi inside srun wins", map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
			"SLURM_PROCID": "1", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "PMIX_RANK": "1"},
			Launch{Launcher: "openmpi", Rank: 1, Size: 2, LocalRank: 1}},
		{"mpich hydra", map[string]string{"PMI_RANK": "5", "PMI_SIZE": "6", "MPI_LOCALRANKID": "2"},
			Launch{Launcher: "hydra", Rank: 5, Size: 6, LocalRank: 2}},
		{"hydra without local rank", map[string]string{"PMI_RANK": "0", "PMI_SIZE": "2"},
			Launch{Launcher: "hydra", Rank: 0, Size: 2, LocalRank: -1}},
		{"srun step", map[string]string{"SLURM_PROCID": "9", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "16", "SLURM_NTASKS": "32", "SLURM_LOCALID": "1"},
			Launch{Launcher: "slurm", Rank: 9, Size: 16, LocalRank: 1}},
		{"srun without step task count", map[string]string{"SLURM_PROCID": "1", "SLURM_STEP_ID": "2", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1"},
			Launch{Launcher: "slurm", Rank: 1, Size: 4, LocalRank: 1}},
		{"sbatch script itself is no worker", map[string]string{"SLURM_PROCID": "0", "SLURM_STEP_ID": "4294967294", "SLURM_NTASKS": "8"},
			Launch{Size: 1}},
		{"slurm allocation without a step", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}, Launch{Size: 1}},
		{"pmix alone: size from MPI", map[string]string{"PMIX_RANK": "2"}, Launch{Launcher: "pmix", Rank: 2, Size: 0, LocalRank: -1}},
		{"launcher of one", map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"},
			Launch{Launcher: "openmpi", Rank: 0, Size: 1, LocalRank: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Detect = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDetectRefusesBadLauncherVariables(t *testing.T) {
	for _, tc := range []struct {
		name, wantErr string
		env           map[string]string
	}{
		{"rank not a number", "OMPI_COMM_WORLD_RANK=\"x\"", map[string]string{"OMPI_COMM_WORLD_RANK": "x", "OMPI_COMM_WORLD_SIZE": "2"}},
		{"size missing", "not PMI_SIZE", map[string]string{"PMI_RANK": "0"}},
		{"rank past size", "must lie in [0, size)", map[string]string{"SLURM_PROCID": "4", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4"}},
		{"negative local rank", "SLURM_LOCALID=\"-1\"", map[string]string{"SLURM_PROCID": "0", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "-1"}},
		{"zero size", "must lie in [0, size)", map[string]string{"PMI_RANK": "0", "PMI_SIZE": "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(func(k string) string { return tc.env[k] })
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Detect error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// A launcher that says several workers where no MPI library opens is an
// error saying what to install, never a single-process run.
func TestFromEnvRefusesWorldWithoutMPI(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_RANK", "")
	t.Setenv("PMI_RANK", "1")
	t.Setenv("PMI_SIZE", "2")
	t.Setenv(mpiLibraryEnv, "libftune-no-such-mpi.so.1")
	c, _, err := FromEnv()
	if err == nil {
		c.Close()
		t.Fatal("FromEnv opened a world of 2 without an MPI library")
	}
	for _, want := range []string{"worker 1 of 2", "libftune-no-such-mpi.so.1", "apt-get install openmpi-bin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFromEnvRefusesBadTimeout(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_RANK", "")
	t.Setenv("PMI_RANK", "1")
	t.Setenv("PMI_SIZE", "2")
	t.Setenv(timeoutEnv, "ten minutes")
	if _, _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), `FTUNE_DIST_TIMEOUT="ten minutes"`) {
		t.Errorf("FromEnv error = %v, want one naming the bad timeout", err)
	}
}

func TestFromEnvWithoutLauncherIsSingle(t *testing.T) {
	for _, k := range []string{"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", "PMIX_RANK"} {
		t.Setenv(k, "")
	}
	c, l, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine() != "single" || c.Size() != 1 || l.Size != 1 || l.LocalRank != 0 {
		t.Errorf("FromEnv = %s size %d, launch %+v; want the single world", c.Engine(), c.Size(), l)
	}
}

func TestShortVersion(t *testing.T) {
	for in, want := range map[string]string{
		"Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022\x00": "Open MPI v4.1.4",
		"MPICH Version:\t4.0.2\nMPICH Release date:\tThu Apr  7 12:34:45 CDT 2022\n":                 "MPICH Version: 4.0.2",
	} {
		if got := shortVersion(in); got != want {
			t.Errorf("shortVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAllGatherStringsSingle(t *testing.T) {
	got, err := AllGatherStrings(Single(), "host:cpu")
	if err != nil || len(got) != 1 || got[0] != "host:cpu" {
		t.Errorf("AllGatherStrings(Single) = %q, %v", got, err)
	}
}
