package main

import (
	"strings"
	"testing"
)

// --gemm-provider reaches training.gemm_provider: a bad name and cublaslt
// on the CPU are refused before anything loads, naming the flag.
func TestGEMMProviderFlag(t *testing.T) {
	out, err := run(t, "train", "--help")
	if err != nil || !strings.Contains(out, "--gemm-provider string ") {
		t.Fatalf("help lacks --gemm-provider: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gemm-provider", "cublas"}, `--gemm-provider cublas: training.gemm_provider: "cublas" is not one of auto, ftune, cublaslt`},
		{[]string{"--gemm-provider", "cublaslt", "--device", "cpu"}, "cublaslt runs on a CUDA device"},
	} {
		out, err := run(t, append([]string{"train", "--output", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v\n%s\nwant %q", tc.args, err, out, tc.want)
		}
	}
}
