// Package safetensors reads and writes the Hugging Face safetensors format:
//
//	[8 bytes]  N, the header length, unsigned little-endian
//	[N bytes]  a JSON object: tensor name -> {"dtype", "shape", "data_offsets"},
//	           plus an optional "__metadata__" object of string values;
//	           padded with spaces so the data starts 8-byte aligned
//	[rest]     the data buffer; data_offsets [begin, end) are relative to it
//
// Open memory-maps a file (on unix; elsewhere it reads it) and validates the
// whole header before returning, so a File that opened is known to be
// consistent: every tensor's byte size is numel times its dtype size, the
// tensors tile the data buffer exactly (no gap, no overlap, nothing past the
// end). A header listing more than maxTensors tensors, or with more than
// maxMetadataBytes of metadata, is refused before it is decoded. Tensor data
// is returned as slices of the mapping, never copied.
//
// OpenDir opens a Hugging Face model folder, sharded (model.safetensors.index.json)
// or not, as one Set. Write and WriteSharded produce files that the Python
// safetensors library and transformers load, written atomically.
//
// Errors name the file, the tensor and what was expected, and wrap one of the
// sentinel errors (ErrCorrupt, ErrNotFound, ErrUnsupportedDType, ErrInvalid,
// ErrClosed) for callers that need to branch.
//
// The format is small, so it is implemented here rather than taken from
// github.com/nlpodyssey/safetensors: that package works on an in-memory byte
// slice only (no mapping, no sharded folders, no atomic writes) and returns
// plain-text errors without the file name or a sentinel to test.
package safetensors
