#!/usr/bin/env python3
"""q16_convert.py - converts the Q16 ViT-L/14 prompt embeddings to safetensors.

Input: the raw little-endian float32 dump (2x768, row-major) of
ml-research/Q16 data/ViT-L-14/prompts.p (a pickled float16 numpy array), or
the pickle itself (the 3072 float16 bytes after its BINBYTES opcode).
Output: a safetensors file with one tensor "prompts" F16 [2,768]; the
original values are float16, so the conversion is exact.

Usage: python3 tools/q16_convert.py IN(.bin|.p) OUT.safetensors
Standard library only (no numpy/torch).
"""
import json
import struct
import sys

ROWS, DIM = 2, 768


def read_values(path):
    data = open(path, "rb").read()
    n = ROWS * DIM
    if path.endswith(".p"):
        # Pickle protocol 3: opcode 'B' (BINBYTES), u32 length, raw bytes.
        at = data.find(b"B" + struct.pack("<I", n * 2))
        if at < 0:
            sys.exit(f"{path}: no BINBYTES block of {n * 2} bytes")
        raw = data[at + 5: at + 5 + n * 2]
        return list(struct.unpack(f"<{n}e", raw))
    if len(data) != n * 4:
        sys.exit(f"{path}: {len(data)} bytes, expected {n * 4} (float32 {ROWS}x{DIM})")
    return list(struct.unpack(f"<{n}f", data))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    vals = read_values(sys.argv[1])
    blob = struct.pack(f"<{len(vals)}e", *vals)
    # Every value must survive float16 exactly (they were float16 originally).
    back = struct.unpack(f"<{len(vals)}e", blob)
    bad = [i for i, (a, b) in enumerate(zip(vals, back)) if a != b]
    if bad:
        sys.exit(f"value {bad[0]} is not exactly representable in float16")
    header = {
        "__metadata__": {
            "source": "ml-research/Q16 data/ViT-L-14/prompts.p "
                      "(commit cdf928f4f3cf522e9459e10d706991d27c5d2824), MIT",
            "rows": "0 = non-inappropriate, 1 = inappropriate",
        },
        "prompts": {"dtype": "F16", "shape": [ROWS, DIM], "data_offsets": [0, len(blob)]},
    }
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(sys.argv[2], "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


if __name__ == "__main__":
    main()
