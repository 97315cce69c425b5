package testutil

import (
	"context"
	"sync/atomic"
)

// CancelAfter is a context whose Err is nil the first n times it is asked
// and context.Canceled after: it cancels work that checks its context
// between items (tensors, chunks) at a known point. Reset arms it again.
type CancelAfter struct {
	context.Context
	left atomic.Int64
}

// NewCancelAfter is a CancelAfter on context.Background that lets n
// checks pass.
func NewCancelAfter(n int) *CancelAfter {
	c := &CancelAfter{Context: context.Background()}
	c.left.Store(int64(n))
	return c
}

// Reset lets the next n checks pass again.
func (c *CancelAfter) Reset(n int) { c.left.Store(int64(n)) }

// Err is nil while checks are left, context.Canceled after.
func (c *CancelAfter) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}
