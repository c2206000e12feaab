#!/usr/bin/env python3
"""pth_to_safetensors.py — convert a zip-format PyTorch state dict (torch.save
of a flat dict of tensors) to .safetensors, with the Python standard library
only (no torch, no numpy).

    python3 tools/pth_to_safetensors.py IN.pth OUT.safetensors

A stop-gap for tests until `sld_st_open` reads .pth itself: the pickle is
unpickled with a find_class that admits only the names a state dict needs
(torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the torch *Storage
types, collections.OrderedDict) and maps them to inert stand-ins, so no code
from the file runs. Tensors keep their stored dtype; non-contiguous views are
refused (a plain state dict has none). Legacy (non-zip) files are refused.
"""
import collections
import json
import os
import pickle
import struct
import sys
import zipfile

DTYPES = {  # torch storage type -> (safetensors dtype, element size)
    "FloatStorage": ("F32", 4), "HalfStorage": ("F16", 2), "BFloat16Storage": ("BF16", 2),
    "DoubleStorage": ("F64", 8), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}


class StorageType:
    def __init__(self, name):
        self.name = name


class Storage:
    def __init__(self, kind, key):
        self.kind, self.key = kind, key


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)


def rebuild_tensor_v2(storage, offset, size, stride, *rest):
    return Tensor(storage, offset, size, stride)


def rebuild_parameter(data, *rest):
    return data


class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rebuild_parameter
        if module == "torch" and name in DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        if pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid[0]!r}")
        return Storage(pid[1].name, str(pid[2]))


def convert(src, dst):
    z = zipfile.ZipFile(src)
    names = z.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl")]
    if len(pkl) != 1:
        sys.exit(f"{src}: not a zip-format torch checkpoint (no single */data.pkl)")
    root = pkl[0][: -len("data.pkl")]
    obj = Reader(z.open(pkl[0])).load()
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    header, blobs, off = {}, [], 0
    for name in sorted(obj):
        t = obj[name]
        if not isinstance(t, Tensor):
            continue
        dt, es = DTYPES[t.storage.kind]
        numel, expect = 1, 1
        for s in t.size:
            numel *= s
        for i in range(len(t.size) - 1, -1, -1):  # contiguous strides
            if t.size[i] > 1 and t.stride[i] != expect:
                sys.exit(f"{src}: '{name}' is not contiguous")
            expect *= t.size[i]
        raw = z.read(root + "data/" + t.storage.key)
        b = raw[t.offset * es:(t.offset + numel) * es]
        if len(b) != numel * es:
            sys.exit(f"{src}: '{name}' runs past its storage")
        header[name] = {"dtype": dt, "shape": list(t.size), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = f"{dst}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
