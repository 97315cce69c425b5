package tensor_test

import (
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

func TestCPUBackendConformance(t *testing.T) {
	backendtest.Run(t, tensor.CPUDefault(), backendtest.F32Tol)
}
