package format

import (
	"io"
	"testing"
)

// BenchmarkRead measures streaming throughput of the JSON readers on
// generated alpaca records (about 150 bytes each).
func BenchmarkRead(b *testing.B) {
	const n = 20_000
	for _, kind := range []Kind{KindJSONL, KindJSON} {
		b.Run(string(kind), func(b *testing.B) {
			g := &genReader{n: n, array: kind == KindJSON}
			size, _ := io.Copy(io.Discard, g)
			b.SetBytes(size)
			for b.Loop() {
				r, _ := NewReader(&genReader{n: n, array: kind == KindJSON}, "gen", kind, Options{})
				for {
					if _, err := r.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}
