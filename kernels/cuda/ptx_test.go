package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPTXUpToDate fails when a .cu (or common.cuh) changed without `make ptx`:
// each .ptx.zst's header records the sha256 of the sources it was built from. It
// needs neither nvcc nor a GPU.
func TestPTXUpToDate(t *testing.T) {
	srcs, err := filepath.Glob("*.cu")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no .cu sources found (%v)", err)
	}
	hash := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	common := hash("common.cuh")
	headRE := regexp.MustCompile(`(?m)^// ftune-ptx source (\S+) sha256 ([0-9a-f]{64})$`)
	flagsRE := regexp.MustCompile(`(?m)^// ftune-ptx nvcc (\S+) flags (.+)$`)
	for _, src := range srcs {
		ptx := strings.TrimSuffix(src, ".cu") + ".ptx"
		zst, err := os.ReadFile(ptx + ".zst")
		if err != nil {
			t.Errorf("%s has no %s.zst: run `make ptx` and commit it", src, ptx)
			continue
		}
		text, err := DecompressPTX(ptx, zst)
		if err != nil {
			t.Error(err)
			continue
		}
		b := []byte(text)
		head := string(b[:min(len(b), 1024)])
		want := map[string]string{src: hash(src), "common.cuh": common}
		got := map[string]string{}
		for _, m := range headRE.FindAllStringSubmatch(head, -1) {
			got[m[1]] = m[2]
		}
		for f, h := range want {
			if got[f] != h {
				t.Errorf("%s was built from a different %s (header sha256 %q, now %s): run `make ptx`", ptx, f, got[f], h)
			}
		}
		// Every module is compute_80 PTX but the Hopper ones (X_sm90.cu:
		// wgmma), compiled for compute_90 and retargeted to sm_90a
		// (tools/ptx.sh says why).
		arch, target := "-arch=compute_80", ".target sm_80"
		if strings.HasSuffix(src, "_sm90.cu") {
			arch, target = "-arch=compute_90", ".target sm_90a"
		}
		if m := flagsRE.FindStringSubmatch(head); m == nil || !strings.Contains(m[2], arch) {
			t.Errorf("%s: header lacks the nvcc flags line with %s", ptx, arch)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `$`).MatchString(head) {
			t.Errorf("%s: no %q line", ptx, target)
		}
		// The driver of CUDA 12.0 accepts PTX ISA up to 8.0.
		v := regexp.MustCompile(`(?m)^\.version (\d+)\.(\d+)$`).FindStringSubmatch(string(b))
		if v == nil {
			t.Errorf("%s: no .version line", ptx)
			continue
		}
		major, _ := strconv.Atoi(v[1])
		minor, _ := strconv.Atoi(v[2])
		if major*10+minor > 80 {
			t.Errorf("%s: PTX ISA %s.%s is newer than CUDA 12.0 drivers load (8.0)", ptx, v[1], v[2])
		}
	}
	ptxs, _ := filepath.Glob("*.ptx*")
	if len(ptxs) != len(srcs) {
		t.Errorf("%d .ptx/.ptx.zst files for %d .cu: remove stale PTX (plain .ptx and .ptx.gz files are no longer read)", len(ptxs), len(srcs))
	}
}

// TestKernelNames checks the embedded kernels follow <op>_<fwd|bwd>_<dtype>.
func TestKernelNames(t *testing.T) {
	names := KernelNames()
	if len(names) < 40 {
		t.Fatalf("only %d kernels embedded", len(names))
	}
	re := regexp.MustCompile(`^[a-z0-9_]+_(fwd|bwd)_(f32|bf16|f64|i32|i64)$`)
	for _, n := range names {
		if !re.MatchString(n) {
			t.Errorf("kernel %q does not follow <op>_<fwd|bwd>_<dtype>", n)
		}
	}
}
