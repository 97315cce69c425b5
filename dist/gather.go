package dist

import "fmt"

// AllGatherStrings returns every worker's s, indexed by rank, on every
// worker: what env.json records as the ranks' hosts and devices. It is
// built on the Comm's own collectives (the lengths all-reduced, then one
// broadcast per rank), so it works on every engine; it is meant for the
// start of a run, not for every step.
func AllGatherStrings(c Comm, s string) ([]string, error) {
	n, r := c.Size(), c.Rank()
	lengths := make([]float64, n) // exact: a float64 holds every int up to 2^53
	lengths[r] = float64(len(s))
	if err := c.AllReduceSumF64(lengths); err != nil {
		return nil, fmt.Errorf("gather strings: lengths: %w", err)
	}
	out := make([]string, n)
	for root := range n {
		buf := make([]byte, int(lengths[root]))
		if root == r {
			copy(buf, s)
		}
		if err := c.Broadcast(buf, root); err != nil {
			return nil, fmt.Errorf("gather strings: rank %d's: %w", root, err)
		}
		out[root] = string(buf)
	}
	return out, nil
}
