"""Check a GGUF file written by ftune with llama.cpp's own reader (gguf-py).

Usage: python3 check_gguf.py FILE DUMP.json [REFERENCE_F32.gguf]

DUMP.json is what `ggufcheck dump FILE` printed: our reader's view of the
file. This script loads FILE with gguf.GGUFReader (the package must be on
sys.path), prints the metadata and the tensor table, and fails when gguf-py
disagrees with our reader on the metadata keys or types, a tensor's name,
type, dimensions or offset, or the dequantized values (gguf.quants).

With REFERENCE_F32.gguf (the same model exported as F32), every F16, Q8_0
and Q4_0 tensor of FILE must also be byte-identical to gguf-py's own
quantization (gguf.quants.quantize, a numpy port of ggml's reference
quantizers) of the reference's float32 values.
"""

import json
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize, quantize

# gguf-py's value types as our reader reports them (Go type names).
GO_TYPE = {
    GGUFValueType.UINT8: "uint8", GGUFValueType.INT8: "int8",
    GGUFValueType.UINT16: "uint16", GGUFValueType.INT16: "int16",
    GGUFValueType.UINT32: "uint32", GGUFValueType.INT32: "int32",
    GGUFValueType.FLOAT32: "float32", GGUFValueType.BOOL: "bool",
    GGUFValueType.STRING: "string", GGUFValueType.UINT64: "uint64",
    GGUFValueType.INT64: "int64", GGUFValueType.FLOAT64: "float64",
}


def short(field):
    """A one-line rendering of a metadata value."""
    t = field.types[0]
    if t == GGUFValueType.ARRAY:
        n = len(field.data)
        et = field.types[-1]
        first = [field.contents(i) for i in range(min(n, 3))]
        return f"[{et.name} x {n}] {first!r}{' ...' if n > 3 else ''}"
    v = field.contents()
    if isinstance(v, str) and len(v) > 60:
        v = v[:57] + "..."
    return f"{t.name} {v!r}"


def go_type(field):
    t = field.types[0]
    if t == GGUFValueType.ARRAY:
        return "[]" + GO_TYPE[field.types[-1]]
    return GO_TYPE[t]


def main():
    path, dump_path = sys.argv[1], sys.argv[2]
    with open(dump_path) as f:
        ours = json.load(f)
    r = GGUFReader(path)
    errors = []

    print(f"== {path}")
    print(f"-- metadata ({len(r.fields)} keys; gguf-py adds GGUF.* header fields)")
    keys = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        keys[name] = go_type(field)
        print(f"  {name:45s} {short(field)}")
    if keys != ours["metadata"]:
        missing = sorted(set(ours["metadata"]) - set(keys))
        extra = sorted(set(keys) - set(ours["metadata"]))
        differ = sorted(k for k in keys if k in ours["metadata"] and keys[k] != ours["metadata"][k])
        errors.append(f"metadata differs: only ours {missing}, only gguf-py {extra}, types {differ}")
    if r.alignment != ours["alignment"] or r.data_offset != ours["data_start"]:
        errors.append(f"alignment/data start: gguf-py {r.alignment}/{r.data_offset}, ours {ours['alignment']}/{ours['data_start']}")

    print(f"-- tensors ({len(r.tensors)})")
    by_name = {t["name"]: t for t in ours["tensors"]}
    if len(by_name) != len(r.tensors):
        errors.append(f"{len(r.tensors)} tensors in gguf-py, {len(by_name)} in ours")
    worst = 0.0
    for t in r.tensors:
        shape = [int(x) for x in t.shape]
        print(f"  {t.name:32s} {t.tensor_type.name:5s} {shape}")
        o = by_name.get(t.name)
        if o is None:
            errors.append(f"{t.name}: not in our reader")
            continue
        if t.tensor_type.name != o["type"] or shape != o["dims"] or t.data_offset - r.data_offset != o["offset"]:
            errors.append(f"{t.name}: gguf-py {t.tensor_type.name} {shape} @{t.data_offset - r.data_offset}, ours {o['type']} {o['dims']} @{o['offset']}")
            continue
        v = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        first = np.array(o["first"])
        # Both readers turn the same bytes into float32 with the same
        # formula, so values must agree exactly; the sums are float64 over
        # identical values in the same order up to numpy's pairwise
        # summation, hence the relative tolerance.
        if not np.array_equal(v[: len(first)], first):
            errors.append(f"{t.name}: first values differ: gguf-py {v[:4]}, ours {first[:4]}")
        s, ss = float(v.sum()), float((v * v).sum())
        rel = max(abs(s - o["sum"]) / (abs(ss) ** 0.5 * len(v) ** 0.5 + 1e-30), abs(ss - o["sumsq"]) / (ss + 1e-30))
        worst = max(worst, rel)
        if rel > 1e-9:
            errors.append(f"{t.name}: sums differ: gguf-py {s}, {ss}; ours {o['sum']}, {o['sumsq']}")
    print(f"-- values: first 64 of every tensor identical; worst relative sum difference {worst:.2e}")
    if len(sys.argv) > 3:
        ref = {t.name: t for t in GGUFReader(sys.argv[3]).tensors}
        n = 0
        for t in r.tensors:
            if t.tensor_type.name not in ("F16", "Q8_0", "Q4_0", "Q5_0", "Q5_1"):  # gguf-py quantizes no k-quant
                continue
            src = ref[t.name]
            if src.tensor_type.name != "F32":
                errors.append(f"{t.name}: reference tensor is {src.tensor_type.name}, not F32")
                continue
            want = quantize(np.asarray(src.data, dtype=np.float32), t.tensor_type)
            if want.tobytes() != np.asarray(t.data).tobytes():
                errors.append(f"{t.name}: bytes differ from gguf-py's {t.tensor_type.name} quantization of the F32 export")
            n += 1
        print(f"-- requantized: {n} tensors byte-identical to gguf-py's quantize() of {sys.argv[3]}")
    if errors:
        print("FAIL")
        for e in errors:
            print("  " + e)
        sys.exit(1)
    print("OK: gguf-py reads the same metadata, tensors and values as ftune's reader")


if __name__ == "__main__":
    main()
