#!/usr/bin/env python3
"""Writes the hostile uploads of tests/hostile into a folder, from nothing but
the standard library: make_files.py DIR. Each file is small, hand-built, and
lies in its headers the way the attacks of issue 15 do. Listed, with what
each one does, in the README's table of bad inputs."""
import os
import struct
import sys
import zlib


def mp3_frames(count):
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono, no CRC: 417 bytes a frame.
    # All-zero side information and main data decode to silence.
    frame = b"\xff\xfb\x90\xc0" + bytes(413)
    return frame * count


def syncsafe(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def id3v24(frames):
    body = b"".join(frames)
    return b"ID3\x04\x00\x00" + syncsafe(len(body)) + body


def txxx(i):
    data = b"\x03" + b"d%d\x00v" % i  # UTF-8, a distinct description each
    return b"TXXX" + syncsafe(len(data)) + b"\x00\x00" + data


def wav_header(channels=1, rate=16000, bits=16):
    block = channels * bits // 8
    return b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)


def riff(chunks):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(tag, data, claimed=None):
    return tag + struct.pack("<I", len(data) if claimed is None else claimed) + data


def box(kind, payload, claimed=None):
    return struct.pack(">I", len(payload) + 8 if claimed is None else claimed) + kind + payload


def ebml_id(value):
    n = (value.bit_length() + 7) // 8
    return value.to_bytes(n, "big")


def ebml_size(n, width=8):
    return ((1 << (7 * width)) | n).to_bytes(width, "big") if width < 8 else \
        (b"\x01" + n.to_bytes(7, "big"))


def element(eid, payload, claimed=None):
    return ebml_id(eid) + ebml_size(len(payload) if claimed is None else claimed) + payload


def ebml_header():
    return element(0x1A45DFA3, element(0x4282, b"webm") + element(0x4287, b"\x04") +
                   element(0x4285, b"\x02"))


def track(number, codec=b"A_OPUS"):
    opus_head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    return element(0xAE, element(0xD7, bytes([number & 0x7F or 1])) +
                   element(0x73C5, number.to_bytes(4, "big")) + element(0x83, b"\x02") +
                   element(0x86, codec) + element(0x63A2, opus_head) +
                   element(0xE1, element(0x9F, b"\x01") + element(0xB5, struct.pack(">f", 48000))))


def png(width, height, rows):
    def part(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" +
            part(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            part(b"IDAT", rows) + part(b"IEND", b""))


def png_bomb(width, height):
    # Every row is filter 0 and black: zlib shrinks ~1000:1.
    z = zlib.compressobj(9)
    row = bytes(1 + width * 3)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return png(width, height, data)


def jpeg_claiming(width, height):
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x00\x03\x11\x00"
    dqt = b"\x00" + bytes([1] * 64)
    return (b"\xff\xd8" + b"\xff\xdb" + struct.pack(">H", len(dqt) + 2) + dqt +
            b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof +
            b"\xff\xda" + struct.pack(">H", 12) + b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" +
            b"\xff\xd9")


def files():
    pcm = bytes(3200)  # 0.1 s of 16 kHz silence
    yield "wav_list_info_2gib.wav", (  # the repro, byte for byte
        b"RIFF" + b"\xff" * 4 + b"WAVE" + wav_header() + b"LIST" +
        struct.pack("<I", 0xFFFFFFF0) + b"INFOINAM" + struct.pack("<I", 0x7FFFFFF0) + b"abc")
    yield "wav_bext_2gib.wav", riff([wav_header(), chunk(b"bext", bytes(64), 0x7FFFFFF0)])
    yield "wav_data_4gib.wav", riff([wav_header(), chunk(b"data", pcm, 0xFFFFFFF0)])
    yield "wav_64ch_384khz.wav", riff([wav_header(64, 384000, 16),
                                       chunk(b"data", bytes(64 * 2 * 38400))])  # 0.1 s
    yield "mp3_txxx_50k.mp3", id3v24([txxx(i) for i in range(50000)]) + mp3_frames(40)
    yield "mp3_id3_claims_256mib.mp3", (b"ID3\x03\x00\x00" + syncsafe(0x0FFFFFFF) + b"APIC" +
                                        struct.pack(">I", 0x0FFFFFF0) + b"\x00\x00" +
                                        bytes(100) + mp3_frames(5))
    yield "mp4_moov_claims_2gib.m4a", (box(b"ftyp", b"M4A \x00\x00\x02\x00isomM4A ") +
                                       box(b"moov", box(b"udta", box(b"meta", bytes(4) +
                                           box(b"ilst", box(b"\xa9nam", box(b"data", bytes(16),
                                                                            0x7FFFFFF0)))),
                                                        0x7FFFFFF0), 0x7FFFFFF0))
    yield "mp4_box_64bit_size.m4a", (box(b"ftyp", b"M4A \x00\x00\x02\x00isomM4A ") +
                                     struct.pack(">I", 1) + b"moov" +
                                     struct.pack(">Q", 1 << 62) + bytes(64))
    yield "mkv_codecprivate_claims_1tib.webm", (
        ebml_header() + element(0x18538067, element(0x1654AE6B, element(
            0xAE, element(0xD7, b"\x01") + element(0x83, b"\x02") + element(0x86, b"A_OPUS") +
            element(0x63A2, bytes(32), 1 << 40)), 1 << 50), (1 << 56) - 1))
    yield "mkv_1000_tracks.webm", ebml_header() + element(
        0x18538067, element(0x1654AE6B, b"".join(track(i + 1) for i in range(1000))) +
        element(0x1F43B675, element(0xE7, b"\x00")))
    yield "png_bomb_16000x6000.png", png_bomb(16000, 6000)
    yield "jpeg_claims_65535x65535.jpg", jpeg_claiming(65535, 65535)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in files():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
