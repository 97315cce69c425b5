package track

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVCSFrom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     *VCSEnv
	}{
		{"no stamp (go test, go run)", []debug.BuildSetting{{Key: "GOARCH", Value: "amd64"}}, nil},
		{"git build", []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-11-26T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}, &VCSEnv{System: "git", Revision: "0123456789abcdef0123", Time: "2026-11-26T10:00:00Z", Modified: true}},
	} {
		got := vcsFrom(tc.settings)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestEnvSummary(t *testing.T) {
	e := Env{GOOS: "linux", GOARCH: "amd64", GoVersion: "go1.26.8", NumCPU: 2, FtuneVersion: "v1.2.3",
		CPU: CPUEnv{Brand: "Test CPU", Features: []string{"AVX", "AVX2", "FMA3", "SSE4"}},
		GPU: "H100", VCS: &VCSEnv{Revision: "0123456789abcdef", Modified: true}}
	want := "Test CPU (2 threads, AVX2, FMA3), linux/amd64, go1.26.8, GPU H100, ftune v1.2.3 @ 0123456789ab+dirty"
	if got := e.Summary(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Env{GOOS: "linux", GOARCH: "arm64"}).Summary(); !strings.HasPrefix(got, "unknown CPU") {
		t.Errorf("empty env: %s", got)
	}
}

func TestCaptureEnvGPUError(t *testing.T) {
	e := CaptureEnv(EnvOptions{GPU: func() (string, error) { return "", errors.New("no CUDA driver") }})
	if e.GPU != "" || e.GPUError != "no CUDA driver" || e.FtuneVersion == "" {
		t.Errorf("env: GPU %q error %q version %q", e.GPU, e.GPUError, e.FtuneVersion)
	}
}

// TestEnvRecordsWorld: a data-parallel job's size, collective engine and
// ranks reach env.json and the one-line summary.
func TestEnvRecordsWorld(t *testing.T) {
	e := CaptureEnv(EnvOptions{WorldSize: 4, Engine: "mpi:Open MPI 4.1.4", Ranks: []string{"a cpu", "a cpu", "b cpu", "b cpu"}})
	if e.WorldSize != 4 || e.Engine != "mpi:Open MPI 4.1.4" || len(e.Ranks) != 4 || e.Ranks[2] != "b cpu" {
		t.Fatalf("world %d engine %q ranks %q", e.WorldSize, e.Engine, e.Ranks)
	}
	if got := e.Summary(); !strings.Contains(got, ", 4 workers over mpi:Open MPI 4.1.4") {
		t.Errorf("summary %q does not name the workers", got)
	}
	if got := CaptureEnv(EnvOptions{WorldSize: 1, Engine: "single"}).Summary(); strings.Contains(got, "workers") {
		t.Errorf("one process summarised as a job: %q", got)
	}
}
