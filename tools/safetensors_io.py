"""safetensors, written and read by hand (no `safetensors` package needed): an 8-byte
little-endian header length, a JSON header (padded with spaces to a multiple of 8 so that the
tensor data starts aligned), then the raw little-endian tensor bytes, back to back, in order.
"""
import json
import os
import struct
import tempfile

import numpy as np
import torch

# dtype name -> the little-endian numpy dtype holding its bytes (BF16: the raw 16 bits)
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "|i1", "U8": "|u1", "BOOL": "|b1",
}
FLOAT_DTYPES = ("F32", "F16", "BF16")


def tensor_bytes(tensor, dtype):
    """A tensor's little-endian bytes as `dtype` (float tensors are converted, rounding to
    nearest even as torch does; integer tensors keep their own dtype)."""
    t = tensor.detach().cpu().contiguous()
    if not t.is_floating_point():
        names = {torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                 torch.uint8: "U8", torch.bool: "BOOL"}
        return names[t.dtype], t.numpy().astype(DTYPES[names[t.dtype]]).tobytes()
    if dtype == "F32":
        return "F32", t.float().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return "F16", t.half().numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return "BF16", t.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()
    raise ValueError("dtype must be F32, F16 or BF16, not %r" % dtype)


def save(path, tensors, metadata, dtype="F32"):
    """Writes tensors (name -> torch tensor, in the dict's order) with string metadata, float
    tensors as `dtype`. Written to a temporary file and renamed: never a partial file."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        kind, raw = tensor_bytes(tensor, dtype)
        header[name] = {"dtype": kind, "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in blobs:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """Reads a file back: (name -> torch tensor, float tensors as float32; metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        buf = raw[8 + n + begin:8 + n + end]
        kind = info["dtype"]
        if kind == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(buf, dtype=DTYPES[kind])
            if kind in FLOAT_DTYPES or kind == "F64":
                array = array.astype(np.float32)
        out[name] = torch.from_numpy(array.copy()).reshape(info["shape"])
    return out, metadata
