#!/usr/bin/env python3
"""make_ckpt.py - builds a large SD-style .ckpt (torch.save zip format) from a
diffusers folder, to measure sld's PyTorch reader (docs/CHECKPOINTS.md).

Usage: python3 tools/make_ckpt.py MODEL_DIR OUT.ckpt
MODEL_DIR: e.g. from `build/sld debug make-random --arch sd15 -o MODEL_DIR`.

Standard library only (no torch): the tensors of text_encoder/, unet/ and
vae/ (named "<component>.<name>") go under "state_dict", beside "epoch" and
"global_step", in a protocol-2 pickle written opcode by opcode; each storage
is a stored zip entry, as torch.save writes them. Tensor data is copied one
tensor at a time.
"""
import json
import struct
import sys
import zipfile

COMPONENTS = [("text_encoder", "model.safetensors"), ("unet", "diffusion_pytorch_model.safetensors"),
              ("vae", "diffusion_pytorch_model.safetensors")]
STORAGE = {"F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage",
           "F64": "DoubleStorage", "I64": "LongStorage", "I32": "IntStorage"}


def text(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def integer(v):  # BININT
    return b"J" + struct.pack("<i", v)


def main(src, out):
    pk = bytearray(b"\x80\x02}" + text("epoch") + integer(1) + b"s" + text("state_dict") + b"}(")
    items = []
    for comp, name in COMPONENTS:
        path = f"{src}/{comp}/{name}"
        with open(path, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        for tname, t in header.items():
            if tname == "__metadata__":
                continue
            shape, (a, b) = t["shape"], t["data_offsets"]
            numel, stride, s = 1, [], 1
            for d in shape:
                numel *= d
            for d in reversed(shape):
                stride.insert(0, s)
                s *= d
            key = str(len(items))
            pk += text(f"{comp}.{tname}") + b"ctorch._utils\n_rebuild_tensor_v2\n((" + text("storage")
            pk += f"ctorch\n{STORAGE[t['dtype']]}\n".encode() + text(key) + text("cpu")
            pk += integer(numel) + b"tQ" + integer(0)
            pk += b"(" + b"".join(integer(d) for d in shape) + b"t("
            pk += b"".join(integer(d) for d in stride) + b"t\x89ccollections\nOrderedDict\n)RtR"
            items.append((key, path, 8 + n + a, b - a))
    pk += b"us" + text("global_step") + integer(1000) + b"s."
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("archive/data.pkl", bytes(pk))
        z.writestr("archive/byteorder", "little")
        for key, path, off, nbytes in items:
            with open(path, "rb") as fh:
                fh.seek(off)
                z.writestr(f"archive/data/{key}", fh.read(nbytes))
        z.writestr("archive/version", "3\n")
    print(f"{out}: {len(items)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
