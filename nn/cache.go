package nn

import (
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Cache keeps each layer's keys and values for incremental decoding. Its
// buffers grow with the positions stored, doubling their capacity up to
// MaxLen, so that a generation that stops early holds memory for the
// tokens it produced, not for every token it was allowed. Growing copies
// the positions stored into the larger buffer: what a forward pass reads
// is the same values whatever the capacity.
type Cache struct {
	Len    int              // positions already stored
	MaxLen int              // positions it may hold at most
	k, v   []*tensor.Tensor // per layer [B,capacity,Hkv,D]; nil until the first positions
	mask   [][]int64        // per row, the key mask of the positions stored so far
	batch  int
	alloc  func(capacity int) *tensor.Tensor // a zeroed layer buffer [B,capacity,Hkv,D]
	// interrupt, when set, is asked before each layer stores its keys:
	// an error stops the forward pass there (interruptible prefill).
	interrupt func() error
}

// minCacheLen is the capacity a cache starts with when its first forward
// pass brings fewer positions: no doubling for a short prompt's first few
// tokens, and little held for a short reply.
const minCacheLen = 16

// NewCache returns a cache for batch rows of up to maxLen positions. It
// allocates no buffer yet: the first forward pass sizes them.
func (m *Model) NewCache(batch, maxLen int) *Cache {
	c := &Cache{MaxLen: maxLen, batch: batch, mask: make([][]int64, batch)}
	c.k = make([]*tensor.Tensor, len(m.Layers))
	c.v = make([]*tensor.Tensor, len(m.Layers))
	c.alloc = func(capacity int) *tensor.Tensor {
		return tensor.Zeros(m.Backend, m.DType, batch, capacity, m.Config.NumKVHeads, m.Config.HeadDim)
	}
	return c
}

// Reset empties the cache (its buffers are kept) so that the next forward
// pass starts again from position 0.
func (c *Cache) Reset() {
	c.Len = 0
	for b := range c.mask {
		c.mask[b] = c.mask[b][:0]
	}
}

// capacity is how many positions layer i's buffers hold now.
func (c *Cache) capacity(i int) int {
	if c.k[i] == nil {
		return 0
	}
	return c.k[i].Dim(1)
}

// grow makes layer i's buffers hold at least n positions: twice their
// capacity (minCacheLen at first), or n when that is more, never more
// than MaxLen. The positions stored are copied over and the old buffers
// given back to the backend (no view of them outlives the forward pass
// that read it).
func (c *Cache) grow(i, n int) {
	capacity := min(c.MaxLen, max(n, 2*c.capacity(i), minCacheLen))
	for _, buf := range [][]*tensor.Tensor{c.k, c.v} {
		old := buf[i]
		t := c.alloc(capacity)
		if old != nil {
			t.Narrow(1, 0, c.Len).CopyFrom(old.Narrow(1, 0, c.Len))
			if err := tensor.Release(old); err != nil {
				panic(&tensor.Error{Err: fmt.Errorf("nn: KV cache: %w", err)})
			}
		}
		buf[i] = t
	}
}

// append stores the new keys/values of layer i and returns every key and
// value so far (no gradient flows through a cache).
func (c *Cache) append(i int, k, v *autograd.Var) (*autograd.Var, *autograd.Var) {
	if c.interrupt != nil {
		if err := c.interrupt(); err != nil {
			// Forward recovers this panic and returns err (tensor.Catch):
			// a stop between two layers leaves Len as it was.
			panic(&tensor.Error{Err: fmt.Errorf("nn: stopped at position %d, before layer %d of %d: %w", c.Len, i, len(c.k), err)})
		}
	}
	T := k.Value.Dim(1)
	if c.Len+T > c.MaxLen {
		panic(&tensor.Error{Err: fmt.Errorf("nn: KV cache full: %d + %d positions > %d", c.Len, T, c.MaxLen)})
	}
	if c.Len+T > c.capacity(i) {
		c.grow(i, c.Len+T)
	}
	c.k[i].Narrow(1, c.Len, T).CopyFrom(k.Value)
	c.v[i].Narrow(1, c.Len, T).CopyFrom(v.Value)
	n := c.Len + T
	return autograd.Const(c.k[i].Narrow(1, 0, n).Contiguous()), autograd.Const(c.v[i].Narrow(1, 0, n).Contiguous())
}

// extendMask records the new positions' mask [B,T] and returns the mask of
// every cached position plus the new ones [B,Len+T].
func (c *Cache) extendMask(m *tensor.Tensor) *tensor.Tensor {
	T := m.Dim(1)
	vals := m.I64()
	n := c.Len + T
	out := make([]int32, c.batch*n) // int32: the attention kernels' type (no conversion per call)
	for b := range c.batch {
		row := c.mask[b]
		for len(row) < c.Len {
			row = append(row, 0) // positions stored without a mask: masked, as they always were
		}
		c.mask[b] = append(row[:c.Len], vals[b*T:(b+1)*T]...)
		for i, v := range c.mask[b] {
			out[b*n+i] = int32(v)
		}
	}
	return tensor.FromHost(m.Backend(), tensor.I32, out, c.batch, n)
}
