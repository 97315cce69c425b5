package track

import (
	"encoding/json"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// The Go collector's soft memory limit in force reaches env.json, and is
// absent when none is set.
func TestEnvRecordsTheGoMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(3 << 30))
	b, err := json.Marshal(CaptureEnv(EnvOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"go_memory_limit_bytes":3221225472`; !strings.Contains(string(b), want) {
		t.Errorf("env.json lacks %s:\n%s", want, b)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if e := CaptureEnv(EnvOptions{}); e.GoMemoryLimitBytes != 0 {
		t.Errorf("no limit set, env records %d", e.GoMemoryLimitBytes)
	}
}
