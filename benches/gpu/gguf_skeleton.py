#!/usr/bin/env python3
"""Cut a GGUF file to its header (metadata, tokenizer, tensor table) and record its full size.

`gguf_skeleton.py cut MODEL.gguf OUT.head` writes the bytes before the tensor data and prints
the full size; `gguf_skeleton.py grow OUT.head SIZE MODEL.gguf` rebuilds a file of the same
shapes and quantisation types whose tensor data is all zeros (sparse, made in no time).

Why: llama-bench's prompt and generation speeds depend on the tensors' shapes and types, not
their values (ggml's kernels have no data-dependent paths), so the header alone measures
tokens/s on the GPU machine, which cannot take the 253 MB model in one call. The words such
a model writes are meaningless: never use it for a run that needs text.
"""
import os
import struct
import sys

# GGUF value types: sizes of the fixed-width ones; 8 = string, 9 = array.
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def data_offset(path):
    with open(path, "rb") as f:
        buf = f.read(64 << 20)  # header + tokenizer of gemma-3: a few MB
    if buf[:4] != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        sys.exit(f"{path}: GGUF version {version} not supported")
    pos = 24
    alignment = 32

    def string(p):
        (n,) = struct.unpack_from("<Q", buf, p)
        return buf[p + 8 : p + 8 + n].decode("utf-8", "replace"), p + 8 + n

    def value(t, p):
        if t in FIXED:
            return None, p + FIXED[t]
        if t == 8:
            return string(p)
        if t == 9:
            (et, n) = struct.unpack_from("<IQ", buf, p)
            p += 12
            if et in FIXED:
                return None, p + n * FIXED[et]
            for _ in range(n):
                _, p = value(et, p)
            return None, p
        sys.exit(f"{path}: unknown GGUF value type {t} at byte {p}")

    for _ in range(n_kv):
        key, pos = string(pos)
        (t,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", buf, pos)
        _, pos = value(t, pos)
    for _ in range(n_tensors):
        _, pos = string(pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8 * n_dims + 4 + 8  # dims, type, offset
    return (pos + alignment - 1) // alignment * alignment


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "cut":
        src, out = sys.argv[2], sys.argv[3]
        off = data_offset(src)
        with open(src, "rb") as f, open(out, "wb") as g:
            g.write(f.read(off))
        print(os.path.getsize(src))
    elif len(sys.argv) == 5 and sys.argv[1] == "grow":
        head, size, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with open(head, "rb") as f, open(out, "wb") as g:
            g.write(f.read())
            g.truncate(size)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
