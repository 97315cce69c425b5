package safetensors_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/ftune/ftune/internal/safetensors"
)

func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Two float32 values, little-endian, as the format stores them.
	data := make([]byte, 8)
	binary.LittleEndian.PutUint32(data[0:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(-2))
	path := filepath.Join(dir, "model.safetensors")
	err = safetensors.Write(path, []safetensors.Tensor{
		{Name: "bias", DType: safetensors.F32, Shape: []int{2}, Data: data},
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	set, err := safetensors.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	t, err := set.Tensor("bias")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.DType, t.Shape, math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4:])))

	_, err = set.Tensor("weight")
	fmt.Println(err != nil && errors.Is(err, safetensors.ErrNotFound))
	// Output:
	// bias F32 [2] -2
	// true
}
