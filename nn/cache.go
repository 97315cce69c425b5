package nn

import (
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Cache keeps each layer's keys and values for incremental decoding.
// Buffers are allocated once for MaxLen positions.
type Cache struct {
	Len    int // positions already stored
	MaxLen int
	k, v   []*tensor.Tensor // per layer [B,MaxLen,Hkv,D]
	mask   []int64          // [B,MaxLen] key mask of the positions stored so far
	batch  int
}

// NewCache allocates a cache for batch rows of up to maxLen positions.
func (m *Model) NewCache(batch, maxLen int) *Cache {
	c := &Cache{MaxLen: maxLen, batch: batch, mask: make([]int64, batch*maxLen)}
	for range m.Layers {
		c.k = append(c.k, tensor.Zeros(m.Backend, m.DType, batch, maxLen, m.Config.NumKVHeads, m.Config.HeadDim))
		c.v = append(c.v, tensor.Zeros(m.Backend, m.DType, batch, maxLen, m.Config.NumKVHeads, m.Config.HeadDim))
	}
	return c
}

// Reset empties the cache (its buffers are kept) so that the next forward
// pass starts again from position 0.
func (c *Cache) Reset() {
	c.Len = 0
	clear(c.mask)
}

// append stores the new keys/values of layer i and returns every key and
// value so far (no gradient flows through a cache).
func (c *Cache) append(i int, k, v *autograd.Var) (*autograd.Var, *autograd.Var) {
	T := k.Value.Dim(1)
	if c.Len+T > c.MaxLen {
		panic(&tensor.Error{Err: fmt.Errorf("nn: KV cache full: %d + %d positions > %d", c.Len, T, c.MaxLen)})
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
	for b := 0; b < c.batch; b++ {
		for t := 0; t < T; t++ {
			c.mask[b*c.MaxLen+c.Len+t] = vals[b*T+t]
		}
	}
	n := c.Len + T
	out := make([]int32, c.batch*n) // int32: the attention kernels' type (no conversion per call)
	for b := 0; b < c.batch; b++ {
		for i, v := range c.mask[b*c.MaxLen : b*c.MaxLen+n] {
			out[b*n+i] = int32(v)
		}
	}
	return tensor.FromHost(m.Backend(), tensor.I32, out, c.batch, n)
}
