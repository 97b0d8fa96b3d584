#!/usr/bin/python3
"""Makes the .pt fixtures of tests/pt (the src/pt reader) and what they must read as.

Run with Debian's python3, which has torch (1.13 here):
    /usr/bin/python3 tools/make_pt_fixtures.py [OUT_DIR]    (default tests/fixtures/pt)

Writes small torch.save files, good and bad, and expected.json: for each good file, every
tensor's dtype, shape, stride, storage offset, contiguity and values (as float32, C order),
and the plain values around them. The tensors are random but seeded, so a rerun with the same
torch writes the same files.
"""
import io
import json
import os
import sys
import zipfile
from collections import OrderedDict

import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pt")

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
          torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def describe(t):
    """What the C reader must see for tensor t."""
    return {
        "dtype": DTYPES[t.dtype],
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "offset": t.storage_offset(),
        "contiguous": t.is_contiguous(),
        # float32 values in C order; float(np.float32) prints exactly
        "values": [float(x) for x in t.detach().to(torch.float32).reshape(-1).tolist()],
    }


def path(name):
    return os.path.join(OUT, name)


def rezip(src, dst, replace=None, drop=(), deflate=(), add=None):
    """Copies a torch zip entry by entry with Python's zipfile (no 64-byte alignment, no data
    descriptors): a different writer, and a way to put a bad entry in a well-formed zip."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info.filename))
            method = zipfile.ZIP_DEFLATED if info.filename in deflate else zipfile.ZIP_STORED
            zout.writestr(zipfile.ZipInfo(info.filename), data, compress_type=method)
        for name, data in (add or {}).items():
            zout.writestr(zipfile.ZipInfo(name), data)


def write_zip64(src, dst):
    """Copies a torch zip into one whose every size and offset is saturated (0xFFFFFFFF) and
    given in zip64 extra fields, local and central, with zip64 end records: what a writer does
    past 4 GiB, in a small file."""
    import struct
    import zlib
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename.encode(), z.read(i.filename)) for i in z.infolist()]
    out, central = bytearray(), bytearray()
    for name, data in entries:
        offset, crc = len(out), zlib.crc32(data)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc,
                           0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0,
                               0xFFFFFFFF) + name + extra
    cd_offset = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, len(entries), len(entries),
                       len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064b50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(dst, "wb").write(bytes(out))


def folder_of(src):
    with zipfile.ZipFile(src) as z:
        return z.namelist()[0].split("/")[0]


class Evil:
    """Pickles as a call to fn(arg): what a hostile checkpoint does."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(13)
    expected = {}

    # A module's own state_dict (an OrderedDict with _metadata, num_batches_tracked int64),
    # with views, shared storages and every dtype added to it.
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    net[1].running_mean.uniform_(-1, 1)
    net[1].num_batches_tracked.fill_(5)
    sd = net.state_dict()
    base = torch.randn(3, 4)
    sd["scalar"] = torch.tensor(2.5)
    sd["base"] = base
    sd["base_t"] = base.t()  # non-contiguous view of the same storage
    sd["base_slice"] = base[1:, ::2]  # offset and stride
    sd["empty"] = torch.zeros(0, 3)
    sd["w_f16"] = torch.randn(2, 3).half()
    sd["w_bf16"] = torch.randn(5).bfloat16()
    sd["w_f64"] = torch.randn(2, 2, dtype=torch.float64)
    sd["i64"] = torch.tensor([-3, 0, 2**40], dtype=torch.int64)
    sd["i32"] = torch.tensor([-7, 9], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["flags"] = torch.tensor([True, False, True])
    sd["expanded"] = torch.randn(1, 3).expand(2, 3)  # stride 0
    sd["f16_view"] = sd["w_f16"].t()
    sd["cube"] = torch.randn(2, 3, 4).permute(2, 0, 1)
    torch.save(sd, path("state_dict.pt"))
    expected["state_dict.pt"] = {k: describe(v) for k, v in sd.items()}
    expected["state_dict.pt#order"] = list(sd.keys())
    expected["state_dict.pt#shared"] = [["base", "base_t"], ["base", "base_slice"],
                                        ["w_f16", "f16_view"]]

    # The same file rewritten by Python's zipfile: another writer's zip.
    rezip(path("state_dict.pt"), path("rezipped.pt"))

    # The same file with zip64 sizes and offsets everywhere (what a file past 4 GiB has).
    write_zip64(path("state_dict.pt"), path("zip64.pt"))

    # Newer pickle protocols (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL); a Parameter.
    small = OrderedDict(a=torch.randn(2, 2), p=torch.nn.Parameter(torch.randn(3)),
                        h=torch.randn(4).half())
    for protocol in (4, 5):
        name = "protocol%d.pt" % protocol
        torch.save(small, path(name), pickle_protocol=protocol)
        expected[name] = {k: describe(v) for k, v in small.items()}

    # A checkpoint: the state dict under "model_state_dict", with plain values around it.
    ckpt = {"epoch": 7, "lr": 0.25, "name": "run-1", "done": True, "none": None,
            "model_state_dict": OrderedDict(w=torch.randn(2, 2))}
    torch.save(ckpt, path("checkpoint.pt"))
    expected["checkpoint.pt"] = {"w": describe(ckpt["model_state_dict"]["w"])}

    # The original's index: {"metadata": [{type, url, label}], "tensor": T}.
    labels = ["guitar", "flûte", "piano"]
    metadata = []
    for i in range(6):
        kind = "audio" if i < 3 else "image"
        folder = "audio" if kind == "audio" else "frames"
        ext = "wav" if kind == "audio" else "jpg"
        label = labels[i % 3]
        metadata.append({"type": kind, "url": "/ear/data/%s/%s/item%d.%s" % (folder, label, i, ext),
                         "label": label})
    vectors = torch.nn.functional.normalize(torch.randn(6, 512), dim=1)
    torch.save({"metadata": metadata, "tensor": vectors}, path("index.pt"))
    expected["index.pt"] = {"tensor": describe(vectors), "metadata": metadata}

    # Refused: pickles that call code, saved by torch itself into its own zip.
    torch.save({"x": Evil(os.system, "echo pwned")}, path("os_system.pt"))
    torch.save({"x": Evil(eval, "1+1")}, path("eval.pt"), pickle_protocol=4)  # STACK_GLOBAL

    # Refused: pickles written by hand into a torch zip (an unknown opcode, a list that holds
    # itself, nesting too deep, a dict with a key twice, a memo index out of order).
    torch.save(OrderedDict(), path("tmp.pt"))
    folder = folder_of(path("tmp.pt"))
    hand = {
        "opcode.pt": b"\x80\x02I1\n.",
        "cycle.pt": b"\x80\x02]q\x00h\x00a.",
        "deep.pt": b"\x80\x02" + b"]" * 100 + b"a" * 99 + b".",
        "dupkey.pt": b"\x80\x02}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u.",
        "memo_skip.pt": b"\x80\x02Nq\x05.",
    }
    for name, pkl in hand.items():
        rezip(path("tmp.pt"), path(name), replace={folder + "/data.pkl": pkl})
    os.remove(path("tmp.pt"))

    # Refused: the container damaged.
    good = open(path("state_dict.pt"), "rb").read()
    open(path("truncated.pt"), "wb").write(good[: len(good) // 2])
    cd = good.rfind(b"PK\x01\x02")  # the last central directory entry: break its offset
    bad = bytearray(good)
    bad[cd + 42:cd + 46] = (len(good) - 10).to_bytes(4, "little")
    open(path("corrupt_cd.pt"), "wb").write(bytes(bad))

    # Refused: a storage shorter than its tensor (the pickle's shape patched from 2x3 to 4x3).
    short = torch.save(OrderedDict(t=torch.randn(2, 3)), path("tmp.pt")) or path("tmp.pt")
    folder = folder_of(short)
    with zipfile.ZipFile(short) as z:
        pkl = z.read(folder + "/data.pkl")
    assert pkl.count(b"K\x02K\x03\x86") == 1
    rezip(short, path("short_storage.pt"),
          replace={folder + "/data.pkl": pkl.replace(b"K\x02K\x03\x86", b"K\x04K\x03\x86")})
    # Refused: a compressed storage; a storage record missing.
    rezip(short, path("deflate.pt"), deflate={folder + "/data/0"})
    rezip(short, path("missing_storage.pt"), drop={folder + "/data/0"})
    # torch 2's extra records: `byteorder` ("little" read, "big" refused), .data/serialization_id.
    rezip(short, path("byteorder_little.pt"),
          add={folder + "/byteorder": b"little", folder + "/.data/serialization_id": b"1234"})
    rezip(short, path("byteorder_big.pt"), add={folder + "/byteorder": b"big"})
    expected["byteorder_little.pt"] = {"t": describe(torch.load(short)["t"])}
    os.remove(short)
    # Refused: the legacy (pre-1.6) format.
    torch.save(OrderedDict(t=torch.zeros(2)), path("legacy.pt"),
               _use_new_zipfile_serialization=False)

    with open(path("expected.json"), "w") as out:
        json.dump(expected, out, indent=1, ensure_ascii=False)
        out.write("\n")
    for name in sorted(os.listdir(OUT)):
        print("%-22s %6d bytes" % (name, os.path.getsize(path(name))))


if __name__ == "__main__":
    main()
