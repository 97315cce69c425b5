package cuda

import "fmt"

// Stream is a CUDA stream. The zero Stream is the legacy default stream,
// which cannot be captured into a graph.
type Stream struct{ h uintptr }

// NewStream creates a non-blocking stream (no implicit sync with stream 0).
func (d *Device) NewStream() (Stream, error) {
	var h uintptr
	err := d.call("cuStreamCreate", func() int32 { return cuStreamCreate(&h, 1) })
	return Stream{h}, err
}

// DestroyStream destroys s (after its queued work completes).
func (d *Device) DestroyStream(s Stream) error {
	if s.h == 0 {
		return nil
	}
	return d.call("cuStreamDestroy", func() int32 { return cuStreamDestroy(s.h) })
}

// SyncStream waits for all work queued on s.
func (d *Device) SyncStream(s Stream) error {
	return d.call("cuStreamSynchronize", func() int32 { return cuStreamSynchronize(s.h) })
}

// Event marks a point in a stream; pairs of events time device work.
type Event struct{ h uintptr }

// NewEvent creates an event with timing enabled.
func (d *Device) NewEvent() (Event, error) {
	var h uintptr
	err := d.call("cuEventCreate", func() int32 { return cuEventCreate(&h, 0) })
	return Event{h}, err
}

// NewSyncEvent creates an event without timing, the cheaper kind for
// ordering one stream's work after another's (WaitEvent).
func (d *Device) NewSyncEvent() (Event, error) {
	var h uintptr
	err := d.call("cuEventCreate", func() int32 { return cuEventCreate(&h, eventDisableTiming) })
	return Event{h}, err
}

// eventDisableTiming is CU_EVENT_DISABLE_TIMING.
const eventDisableTiming = 2

// WaitEvent makes the work queued on s after this call wait until e's
// latest record (queued before this call) has happened, without waiting on
// the host.
func (d *Device) WaitEvent(s Stream, e Event) error {
	return d.call("cuStreamWaitEvent", func() int32 { return cuStreamWaitEvent(s.h, e.h, 0) })
}

// EventDone reports whether e's latest record has happened, without
// waiting (cuEventQuery: CUDA_ERROR_NOT_READY is false, not an error).
func (d *Device) EventDone(e Event) (bool, error) {
	var rc int32
	err := d.call("cuEventQuery", func() int32 {
		rc = cuEventQuery(e.h)
		if rc == errNotReady {
			return 0
		}
		return rc
	})
	return err == nil && rc == 0, err
}

// errNotReady is CUDA_ERROR_NOT_READY: queued work has not finished.
const errNotReady = 600

// DestroyEvent destroys e.
func (d *Device) DestroyEvent(e Event) error {
	return d.call("cuEventDestroy", func() int32 { return cuEventDestroy(e.h) })
}

// Record queues e on s.
func (d *Device) Record(e Event, s Stream) error {
	return d.call("cuEventRecord", func() int32 { return cuEventRecord(e.h, s.h) })
}

// SyncEvent waits until e has happened.
func (d *Device) SyncEvent(e Event) error {
	return d.call("cuEventSynchronize", func() int32 { return cuEventSynchronize(e.h) })
}

// Elapsed returns the milliseconds between two recorded events (both must
// have happened; call SyncEvent(end) first).
func (d *Device) Elapsed(start, end Event) (float32, error) {
	var ms float32
	err := d.call("cuEventElapsedTime", func() int32 { return cuEventElapsedTime(&ms, start.h, end.h) })
	return ms, err
}

// Graph is an instantiated CUDA graph, captured from a stream; replaying it
// launches all its kernels with one host call.
type Graph struct {
	d    *Device
	g, e uintptr
}

// BeginCapture starts recording the work queued on s (which must not be the
// default stream) instead of running it. Relaxed mode, because Go may run
// unrelated driver calls on other threads meanwhile.
func (d *Device) BeginCapture(s Stream) error {
	if s.h == 0 {
		return badArg("BeginCapture: the default stream cannot be captured")
	}
	return d.call("cuStreamBeginCapture", func() int32 { return cuStreamBeginCapture(s.h, 2) })
}

// EndCapture stops recording on s and instantiates the graph.
func (d *Device) EndCapture(s Stream) (*Graph, error) {
	gr := &Graph{d: d}
	if err := d.call("cuStreamEndCapture", func() int32 { return cuStreamEndCapture(s.h, &gr.g) }); err != nil {
		return nil, err
	}
	if err := d.call("cuGraphInstantiateWithFlags", func() int32 { return cuGraphInstantiateWithFlags(&gr.e, gr.g, 0) }); err != nil {
		d.call("cuGraphDestroy", func() int32 { return cuGraphDestroy(gr.g) })
		return nil, fmt.Errorf("instantiate captured graph: %w", err)
	}
	return gr, nil
}

// Launch replays the graph on s.
func (g *Graph) Launch(s Stream) error {
	return g.d.call("cuGraphLaunch", func() int32 { return cuGraphLaunch(g.e, s.h) })
}

// Destroy frees the graph.
func (g *Graph) Destroy() error {
	err := g.d.call("cuGraphExecDestroy", func() int32 { return cuGraphExecDestroy(g.e) })
	if e := g.d.call("cuGraphDestroy", func() int32 { return cuGraphDestroy(g.g) }); err == nil {
		err = e
	}
	return err
}
