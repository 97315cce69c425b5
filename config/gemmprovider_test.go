package config

import (
	"strings"
	"testing"
)

func TestGEMMProviderValidation(t *testing.T) {
	if Default().Training.GEMMProvider != "auto" {
		t.Errorf("default training.gemm_provider %q, want auto", Default().Training.GEMMProvider)
	}
	for sets, want := range map[string]string{
		"training.gemm_provider=cublaslt":                        "",
		"training.gemm_provider=ftune,training.device=cpu":       "",
		"training.gemm_provider=auto,training.device=cpu":        "",
		"training.gemm_provider=cublas":                          `training.gemm_provider: "cublas" is not one of auto, ftune, cublaslt`,
		"training.gemm_provider=cublaslt,training.device=cpu":    "cublaslt runs on a CUDA device",
		"training.gemm_provider=cublaslt,training.device=cuda:1": "",
	} {
		cfg := Default()
		if err := Apply(cfg, strings.Split(sets, ",")); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", sets, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", sets, err, want)
		}
	}
}
