package sysmem

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const meminfo = "MemTotal:       24558120 kB\nMemFree:         1234 kB\nMemAvailable:   20000000 kB\n"
	for key, want := range map[string]uint64{"MemTotal": 24558120 * 1024, "MemAvailable": 20000000 * 1024, "SwapTotal": 0} {
		if got := parse(strings.NewReader(meminfo), key); got != want {
			t.Errorf("parse %s = %d, want %d", key, got, want)
		}
	}
	if got := parse(strings.NewReader("MemTotal: lots kB\n"), "MemTotal"); got != 0 {
		t.Errorf("a malformed figure read as %d", got)
	}
}

func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("meminfo is Linux's")
	}
	total, avail := Total(), Available()
	if total == 0 || avail == 0 || avail > total {
		t.Fatalf("total %d, available %d", total, avail)
	}
}

// TestLimit: the cgroup's limit, the smallest along its path, when below
// the machine's memory; "max" and v1's "unlimited" are no limit; a
// container whose cgroup path does not exist reads its root's.
func TestLimit(t *testing.T) {
	const total = 64 << 30
	write := func(root, path, body string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct {
		files map[string]string
		want  uint64
	}{
		"no cgroup file": {nil, total},
		"v2, unlimited":  {map[string]string{"proc/self/cgroup": "0::/user.slice/run\n", "sys/fs/cgroup/user.slice/run/memory.max": "max\n"}, total},
		"v2, limited":    {map[string]string{"proc/self/cgroup": "0::/user.slice/run\n", "sys/fs/cgroup/user.slice/run/memory.max": "17179869184\n"}, 16 << 30},
		"v2, a parent's limit is smaller": {map[string]string{"proc/self/cgroup": "0::/a/b\n",
			"sys/fs/cgroup/a/b/memory.max": "17179869184\n", "sys/fs/cgroup/a/memory.max": "8589934592\n"}, 8 << 30},
		"v2, in a container":  {map[string]string{"proc/self/cgroup": "0::/docker/abc\n", "sys/fs/cgroup/memory.max": "4294967296\n"}, 4 << 30},
		"v1, unlimited":       {map[string]string{"proc/self/cgroup": "4:memory:/x\n1:cpu:/\n", "sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n"}, total},
		"v1, limited":         {map[string]string{"proc/self/cgroup": "4:cpuacct,memory:/x\n", "sys/fs/cgroup/memory/x/memory.limit_in_bytes": "2147483648\n"}, 2 << 30},
		"above the machine's": {map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "137438953472\n"}, total},
		"malformed":           {map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "lots\n"}, total},
	} {
		root := t.TempDir()
		for p, body := range c.files {
			write(root, p, body)
		}
		if got := limit(root, total); got != c.want {
			t.Errorf("%s: limit %d, want %d", name, got, c.want)
		}
	}
	if got := limit(t.TempDir(), 0); got != 0 {
		t.Errorf("nothing known: %d, want 0", got)
	}
}
