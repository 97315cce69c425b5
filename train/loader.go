package train

import (
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Batch is one step's input.
type Batch struct {
	nn.Batch
	Subjects []string // per row
	Tokens   int      // real (non-padding) tokens
	// Labelled counts the tokens the loss predicts: the labels at
	// positions 1 and on that are not ignored (the loss shifts labels left
	// by one, as transformers' does; a row's first label predicts
	// nothing). The loss is their mean.
	Labelled int
	// Fresh: the batch's tensors were made for it alone (Collate's), so
	// the trainer gives them back once its micro-batch has run instead of
	// leaving them to Go's collector. A loader that hands out the same
	// tensors again leaves it false.
	Fresh bool
}

// Release gives a fresh batch's tensors back (each storage once; a batch
// that is not Fresh keeps them): once its forward has read them.
func (b Batch) Release() error {
	if !b.Fresh {
		return nil
	}
	return tensor.ReleaseAll(b.InputIDs, b.Labels, b.AttentionMask, b.Segments)
}

// Loader yields batches of one epoch in a deterministic order and can
// report and restore its position, so a checkpoint resumes mid-epoch.
type Loader interface {
	// Next returns the next batch, or io.EOF at the end of the epoch. A
	// step reads all its micro-batches before it runs the first, so a
	// batch's tensors must stay as they are until its step ends.
	Next() (Batch, error)
	// StartEpoch rewinds to the start of epoch e (order depends on e).
	StartEpoch(e int)
	// Position is (epoch, batches consumed in it).
	Position() (epoch, index int)
	// Len is the number of batches per epoch.
	Len() int
}

// Order is the order in which a loader visits its N items, BatchSize at
// a time: as given, or shuffled per epoch from Seed (the epoch's order
// depends on the seed and the epoch alone, so a resumed run draws it
// again), and where it is, the epoch and the batches consumed in it, which
// checkpoints save and Seek restores. Loaders embed it for Loader's
// StartEpoch, Position, Len and Seek.
type Order struct {
	N         int
	BatchSize int
	Shuffle   bool
	Seed      uint64

	order        []int
	epoch, index int
}

func (o *Order) StartEpoch(e int) {
	o.epoch, o.index = e, 0
	o.order = make([]int, o.N)
	for i := range o.order {
		o.order[i] = i
	}
	if o.Shuffle {
		r := rand.New(rand.NewPCG(o.Seed, uint64(e)))
		r.Shuffle(len(o.order), func(i, j int) { o.order[i], o.order[j] = o.order[j], o.order[i] })
	}
}

func (o *Order) Position() (int, int) { return o.epoch, o.index }

func (o *Order) Len() int { return (o.N + o.BatchSize - 1) / o.BatchSize }

// Seek moves to batch index of epoch e.
func (o *Order) Seek(e, index int) {
	o.StartEpoch(e)
	o.index = index
}

// NextBatch returns the items of the epoch's next batch and moves past
// it, or nil at the end of the epoch.
func (o *Order) NextBatch() []int {
	start := o.index * o.BatchSize
	if start >= len(o.order) {
		return nil
	}
	o.index++
	return o.order[start:min(start+o.BatchSize, len(o.order))]
}

// RowLoader batches in-memory rows of the data pipeline (prep.Row, packed
// or padded), shuffled per epoch from a seed (shuffling off keeps file
// order), padded on the right to each batch's longest row. Subjects names
// the rows' subject ids (Row.Subject; -1, a packed row mixing subjects,
// has the name "").
type RowLoader struct {
	Order
	Rows     []prep.Row
	Subjects []string
	PadID    int
	Backend  tensor.Backend
	// Augment, when set, changes each batch's rows (prompt dropout); it is
	// given the epoch and batch index, so a resumed run redraws the same.
	Augment func(rows []prep.Row, epoch, index int) ([]prep.Row, error)
}

// NewRowLoader checks the rows and starts at epoch 0.
func NewRowLoader(rows []prep.Row, subjects []string, batchSize int, shuffle bool, seed uint64, padID int, be tensor.Backend) (*RowLoader, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("train: batch size must be > 0, got %d", batchSize)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("train: no rows to train on")
	}
	for i, r := range rows {
		if len(r.InputIDs) == 0 || len(r.Learnt) != len(r.InputIDs) {
			return nil, fmt.Errorf("train: row %d: %d ids and %d learnt flags", i, len(r.InputIDs), len(r.Learnt))
		}
		named := r.Subject == -1 || r.Subject >= 0 && r.Subject < len(subjects) || len(subjects) == 0 && r.Subject == 0
		if !named {
			return nil, fmt.Errorf("train: row %d: subject %d, but %d subject names", i, r.Subject, len(subjects))
		}
		if err := checkStarts(r); err != nil {
			return nil, fmt.Errorf("train: row %d: %w", i, err)
		}
	}
	if be == nil {
		be = tensor.CPUDefault()
	}
	l := &RowLoader{Order: Order{N: len(rows), BatchSize: batchSize, Shuffle: shuffle, Seed: seed}, Rows: rows, Subjects: subjects, PadID: padID, Backend: be}
	l.StartEpoch(0)
	return l, nil
}

func (l *RowLoader) Next() (Batch, error) {
	epoch, index := l.Position()
	idx := l.NextBatch()
	if idx == nil {
		return Batch{}, io.EOF
	}
	rows := make([]prep.Row, 0, len(idx))
	for _, i := range idx {
		rows = append(rows, l.Rows[i])
	}
	if l.Augment != nil {
		var err error
		if rows, err = l.Augment(rows, epoch, index); err != nil {
			return Batch{}, err
		}
	}
	return Collate(rows, l.Subjects, l.PadID, l.Backend), nil
}

// checkStarts checks a row's document starts: one per document (none for
// one), the first 0, each after the one before and inside the row.
func checkStarts(r prep.Row) error {
	if r.Docs <= 1 && r.Starts == nil {
		return nil
	}
	if len(r.Starts) != r.Docs {
		return fmt.Errorf("%d documents and %d document starts", r.Docs, len(r.Starts))
	}
	for d, s := range r.Starts {
		if d == 0 && s != 0 || d > 0 && s <= r.Starts[d-1] || int(s) >= len(r.InputIDs) {
			return fmt.Errorf("document %d starts at %d (starts %v, %d tokens)", d, s, r.Starts, len(r.InputIDs))
		}
	}
	return nil
}

// Collate pads rows on the right to the longest one: pad id, attention mask
// 0 and label -100 on padding. Rows holding several documents (packed,
// Docs > 1) give their documents' positions and segments, padding is a
// segment of its own (-1); subjects names the rows' subject ids.
func Collate(rows []prep.Row, subjects []string, padID int, be tensor.Backend) Batch {
	T := 0
	packed := false
	for _, r := range rows {
		T = max(T, len(r.InputIDs))
		packed = packed || r.Docs > 1
	}
	B := len(rows)
	ids := make([]int64, B*T)
	labels := make([]int64, B*T)
	// The key mask and the segments are int32, the attention kernels' own
	// type: the GPU reads them as uploaded, with no conversion per call.
	mask := make([]int32, B*T)
	var pos []int
	var seg []int32
	var rowPos []int32
	if packed {
		pos = make([]int, B*T)
		seg = make([]int32, B*T)
		rowPos = make([]int32, T)
	}
	out := Batch{Subjects: make([]string, B), Fresh: true}
	for b, r := range rows {
		if r.Subject >= 0 && r.Subject < len(subjects) {
			out.Subjects[b] = subjects[r.Subject]
		}
		n := len(r.InputIDs)
		for t := 0; t < T; t++ {
			i := b*T + t
			if t < n {
				ids[i], labels[i], mask[i] = int64(r.InputIDs[t]), int64(r.Label(t)), 1
				out.Tokens++
				if t > 0 && r.Learnt[t] {
					out.Labelled++
				}
			} else {
				ids[i], labels[i] = int64(padID), nn.IgnoreIndex
			}
		}
		if packed {
			row := seg[b*T : (b+1)*T]
			r.LayoutInto(rowPos, row)
			for t := range T {
				if t < n {
					pos[b*T+t] = int(rowPos[t])
				} else {
					pos[b*T+t], row[t] = t, -1 // padding is its own document
				}
			}
		}
	}
	out.InputIDs = tensor.FromHost(be, tensor.I64, ids, B, T)
	out.Labels = tensor.FromHost(be, tensor.I64, labels, B, T)
	out.AttentionMask = tensor.FromHost(be, tensor.I32, mask, B, T)
	if packed {
		out.PositionIDs = pos
		out.Segments = tensor.FromHost(be, tensor.I32, seg, B, T)
	}
	return out
}
