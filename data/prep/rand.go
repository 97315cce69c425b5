package prep

// Rand is a small deterministic generator (splitmix64). ftune owns it
// rather than using math/rand so that a seed gives the same shuffle, split
// and augmentation on every Go version and platform: datasets and caches
// are reproducible from their seed.
type Rand struct{ state uint64 }

// NewRand returns a generator for seed.
func NewRand(seed uint64) *Rand { return &Rand{state: seed} }

// Uint64 returns the next 64 random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Intn returns a uniform int in [0, n); n must be positive. Rejection
// keeps it unbiased.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		panic("prep: Intn of a non-positive bound")
	}
	bound := uint64(n)
	limit := -bound % bound // 2^64 mod n
	for {
		v := r.Uint64()
		if v >= limit {
			return int(v % bound)
		}
	}
}

// Float64 returns a uniform float64 in [0, 1).
func (r *Rand) Float64() float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// Shuffle permutes s in place (Fisher-Yates).
func Shuffle[T any](s []T, r *Rand) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

// Perm returns a random permutation of [0, n).
func Perm(n int, r *Rand) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	Shuffle(p, r)
	return p
}

// SplitRatio splits items into train and validation sets: a seeded shuffle,
// then the last round(valFraction*n) items (at least one when valFraction
// > 0 and n >= 2) go to validation. items is not modified.
func SplitRatio[T any](items []T, valFraction float64, seed uint64) (train, val []T) {
	n := len(items)
	k := int(valFraction*float64(n) + 0.5)
	if valFraction > 0 && k == 0 && n >= 2 {
		k = 1
	}
	k = min(max(k, 0), n)
	perm := Perm(n, NewRand(seed))
	for i, j := range perm {
		if i < n-k {
			train = append(train, items[j])
		} else {
			val = append(val, items[j])
		}
	}
	return train, val
}
