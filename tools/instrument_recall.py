#!/usr/bin/env python3
"""How well the instrument model finds instruments in a soundfont it never heard, with the C
engine only (Ear's `ear` binary; no PyTorch, no NumPy: any python3).

    tools/instrument_recall.py [--model demo/instruments.safetensors]
        [--data .cache/ear-demo/instruments] [--ear build/ear] [--via query|embed]
        [--font timgm] [--limit N] [--work DIR]

The held-out soundfont's clips (timgm: Debian's timgm6mb-soundfont, which training never saw) are
split in two: the even-numbered ones are indexed with every picture of every instrument (the
pictures training did not see as well, listed in DATA/.held-out); the odd-numbered ones are the
queries, each first put through a microphone-like condition made by ffmpeg's own filters with
their own seeds (aecho rooms, anoisesrc noise, band limits, level, WebM/Opus at 32 or 48 kbit/s
as a browser uploads; none of it is what training used). Then, by the label of the results:

  sound -> frame   R@1 (the first picture's instrument is right) and P@5 (right ones among 5)
  sound -> sound   R@1 and P@5 among the indexed sounds (never the query's own clip)
  frame -> sound   every picture as a query: R@1 and P@5 among the indexed sounds

per instrument and over all queries, and sound -> frame R@1 per microphone condition. P@5 of
sound -> frame is also given capped ("P@5c": right ones among min(5, pictures of the
instrument)), since an instrument with one picture can have at most one right frame in five.
Tux Paint's real recordings of instruments, never trained on, are queried too, for information.

--via query (the default): the index is built with
`ear index` and each query is a POST /query to `ear serve`, the original's API (same_modality,
cross_modality, 5 each). --via embed: each file is embedded with `ear embed` and ranked here by
cosine (the C engine's embeddings, ranking in Python). Exit status 1 when the targets are not
met: sound -> frame R@1 >= 0.75 and P@5c >= 0.7, frame -> sound P@5 >= 0.7.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

CONDITIONS = [  # name, filter at 48 kHz, noise colour:amplitude, kbit/s (as tools/demo_recall.sh)
    ("room-pink-32k", "adelay=400|0,apad=pad_dur=0.6,aecho=0.8:0.6:37|61:0.3|0.2,"
     "highpass=f=150,lowpass=f=6500", "pink:0.02", 32),
    ("hall-brown-48k", "adelay=700|0,apad=pad_dur=0.4,aecho=0.8:0.5:90|160|230:0.35|0.25|0.15,"
     "highpass=f=250,lowpass=f=4500,volume=0.5", "brown:0.04", 48),
    ("laptop-white-32k", "adelay=250|0,apad=pad_dur=0.8,aecho=0.8:0.7:23:0.4,highpass=f=300,"
     "lowpass=f=7500,volume=1.6,alimiter=limit=0.9", "white:0.01", 32),
]


def microphone(src, dst, condition, seed):
    name, shape, noise, kbps = condition
    colour, amplitude = noise.split(":")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-f", "lavfi", "-i",
         "anoisesrc=color=%s:amplitude=%s:seed=%d:sample_rate=48000" % (colour, amplitude, seed),
         "-filter_complex", "[0:a]aresample=48000,aformat=channel_layouts=mono,%s[s];"
         "[s][1:a]amix=inputs=2:duration=first:normalize=0[m]" % shape,
         "-map", "[m]", "-ac", "2", "-ar", "48000", "-c:a", "libopus", "-b:a", "%dk" % kbps, dst],
        check=True)


def read_npy(path):
    with open(path, "rb") as f:
        raw = f.read()
    header_length = struct.unpack("<H", raw[8:10])[0]
    body = raw[10 + header_length:]
    return list(struct.unpack("<%df" % (len(body) // 4), body))


class Embedder:
    """--via embed: `ear embed` per file, cosine ranking here."""

    def __init__(self, ear, model, work):
        self.ear, self.model, self.work = ear, model, work
        self.sounds, self.frames = [], []      # (label, url, vector)

    def embed(self, kind, path):
        out = os.path.join(self.work, "e.npy")
        subprocess.run([self.ear, "embed", "--model", self.model, "--" + kind, path, "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        return read_npy(out)

    def build(self, data):
        for kind, rows in (("audio", self.sounds), ("frames", self.frames)):
            for label in sorted(os.listdir(os.path.join(data, kind))):
                for file in sorted(os.listdir(os.path.join(data, kind, label))):
                    rows.append((label, "/data/%s/%s/%s" % (kind, label, file),
                                 self.embed("audio" if kind == "audio" else "image",
                                            os.path.join(data, kind, label, file))))

    def query(self, path, kind):
        v = self.embed(kind, path)

        def best(rows):
            scored = sorted(rows, key=lambda r: -sum(a * b for a, b in zip(v, r[2])))
            return [{"label": r[0], "url": r[1]} for r in scored[:5]]
        same, cross = (self.sounds, self.frames) if kind == "audio" else (self.frames, self.sounds)
        return best(same), best(cross)


class Server:
    """--via query: `ear index` then `ear serve`, POST /query per file."""

    def __init__(self, ear, model, work):
        self.ear, self.model, self.work = ear, model, work
        self.process = None

    def build(self, data):
        index = os.path.join(self.work, "ear.index")
        with open(os.path.join(self.work, "index.log"), "w") as log:
            subprocess.run([self.ear, "index", "--model", self.model, "--data", data, "-o", index],
                           check=True, stdout=log, stderr=log)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [self.ear, "serve", "--model", self.model, "--index", index, "--data", data,
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "serve.log"), "w"))
        for _ in range(300):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % self.port, timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit("ear serve exited: see %s/serve.log" % self.work)
                time.sleep(0.1)
        raise SystemExit("ear serve did not answer")

    def query(self, path, kind):
        boundary = uuid.uuid4().hex
        with open(path, "rb") as f:
            body = (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                    b"Content-Type: application/octet-stream\r\n\r\n" % (
                        boundary.encode(), os.path.basename(path).encode())
                    + f.read() + b"\r\n--%s--\r\n" % boundary.encode())
        request = urllib.request.Request(
            "http://127.0.0.1:%d/query" % self.port, data=body,
            headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        answer = json.load(urllib.request.urlopen(request, timeout=120))
        return answer.get("same_modality", []), answer.get("cross_modality", [])

    def close(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(repo, "demo/instruments.safetensors"))
    p.add_argument("--data", default=os.path.join(repo, ".cache/ear-demo/instruments"))
    p.add_argument("--ear", default=os.path.join(repo, "build/ear"))
    p.add_argument("--via", choices=["query", "embed"], default=None)
    p.add_argument("--font", default="timgm", help="the held-out soundfont's file prefix")
    p.add_argument("--limit", type=int, default=0, help="at most N query sounds per instrument")
    p.add_argument("--work", default=None, help="keep the queries and the index here")
    args = p.parse_args()
    via = args.via or "query"
    work = args.work or tempfile.mkdtemp(prefix="ear-instruments.")
    os.makedirs(work, exist_ok=True)
    started = time.time()

    # The evaluation dataset: even clips of the held-out font and every picture.
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    queries, recordings = [], []
    instruments = sorted(os.listdir(os.path.join(args.data, "frames")))
    with open(os.path.join(args.data, ".held-out")) as f:
        held = set(line.strip() for line in f)
    seed = 70001
    for label in instruments:
        os.makedirs(os.path.join(data, "audio", label))
        shutil.copytree(os.path.join(args.data, "frames", label),
                        os.path.join(data, "frames", label))
        odd = 0
        for file in sorted(os.listdir(os.path.join(args.data, "audio", label))):
            src = os.path.join(args.data, "audio", label, file)
            if file.startswith("tuxpaint-"):
                recordings.append((label, src))
                continue
            if not file.startswith(args.font + "-"):
                continue
            number = int(file.rsplit("-", 1)[1].split(".")[0])
            if number % 2 == 0:
                shutil.copy(src, os.path.join(data, "audio", label, file))
            elif not args.limit or odd < args.limit:
                odd += 1
                seed += 1
                condition = CONDITIONS[seed % len(CONDITIONS)]
                dst = os.path.join(work, "q-%s-%s.%s.webm" % (label, file[:-4], condition[0]))
                microphone(src, dst, condition, seed)
                queries.append((label, dst))
    frames = [(label, os.path.join(data, "frames", label, f), "frames/%s/%s" % (label, f) in held)
              for label in instruments for f in sorted(os.listdir(os.path.join(data, "frames", label)))]
    pictures = {label: sum(1 for x in frames if x[0] == label) for label in instruments}

    engine = (Server if via == "query" else Embedder)(args.ear, args.model, work)
    try:
        engine.build(data)
        rows = {label: {k: [0.0, 0.0, 0.0, 0] for k in ("a2f", "a2a", "f2a")}
                for label in instruments}   # R@1 sum, P@5 sum, P@5c sum, count
        misses = []
        short = {"audio": 0, "image": 0}    # answers with fewer than 5 in a column

        def score(label, key, results):
            right = [r.get("label") == label for r in results[:5]]
            row = rows[label][key]
            row[0] += 1.0 if right and right[0] else 0.0
            row[1] += sum(right) / 5
            cap = min(5, pictures[label]) if key == "a2f" else 5
            row[2] += min(sum(right), cap) / cap
            row[3] += 1
            return right
        by_condition = {c[0]: [0, 0] for c in CONDITIONS}  # sound -> frame right at 1, count
        for label, path in queries:
            same, cross = engine.query(path, "audio")
            short["audio"] += len(same) < 5 or len(cross) < 5
            score(label, "a2a", same)
            hit = score(label, "a2f", cross)[:1] == [True]
            condition = by_condition[os.path.basename(path).rsplit(".", 2)[1]]
            condition[0] += hit
            condition[1] += 1
            if not hit:
                misses.append("%s -> %s" % (os.path.basename(path),
                                            cross[0].get("label") if cross else "nothing"))
        held_f2a = [0, 0.0, 0]
        for label, path, is_held in frames:
            same, cross = engine.query(path, "image")
            short["image"] += len(same) < 5 or len(cross) < 5
            right = score(label, "f2a", cross)
            if is_held:
                held_f2a[0] += 1 if right[:1] == [True] else 0
                held_f2a[1] += sum(right) / 5
                held_f2a[2] += 1
        real = []
        for label, path in recordings:
            seed += 1
            dst = os.path.join(work, "r-%s" % os.path.basename(path).replace(".ogg", ".webm"))
            microphone(path, dst, CONDITIONS[0], seed)
            same, cross = engine.query(dst, "audio")
            real.append((os.path.basename(path), label, [r.get("label") for r in cross[:3]]))
    finally:
        if isinstance(engine, Server):
            engine.close()

    print("instrument recall: %s on %s's held-out soundfont '%s', via %s (%d sound queries, "
          "%d picture queries, %d pictures held out of training)" % (
              os.path.basename(args.model), os.path.basename(args.data.rstrip("/")), args.font,
              "POST /query" if via == "query" else "ear embed + cosine", len(queries), len(frames),
              sum(1 for x in frames if x[2])))
    head = "%-16s %4s | %-24s | %-13s | %-13s" % ("instrument", "pics", "sound->frame R@1 P@5 P@5c",
                                                   "sound->sound", "frame->sound")
    print(head)
    print("%-16s %4s | %-24s | %-13s | %-13s" % ("", "", "", "R@1   P@5", "R@1   P@5"))
    total = {k: [0.0, 0.0, 0.0, 0] for k in ("a2f", "a2a", "f2a")}
    for label in instruments:
        r = rows[label]
        for k in total:
            for i in range(4):
                total[k][i] += r[k][i]

        def f(k, i, r=r):
            return r[k][i] / r[k][3] if r[k][3] else float("nan")
        print("%-16s %4d | %8.2f %5.2f %5.2f       | %5.2f %5.2f   | %5.2f %5.2f" % (
            label, pictures[label], f("a2f", 0), f("a2f", 1), f("a2f", 2), f("a2a", 0),
            f("a2a", 1), f("f2a", 0), f("f2a", 1)))

    def t(k, i):
        return total[k][i] / total[k][3] if total[k][3] else float("nan")
    print("%-16s %4d | %8.3f %5.3f %5.3f    | %5.3f %5.3f | %5.3f %5.3f" % (
        "all", len(frames), t("a2f", 0), t("a2f", 1), t("a2f", 2), t("a2a", 0), t("a2a", 1),
        t("f2a", 0), t("f2a", 1)))
    if held_f2a[2]:
        print("held-out pictures only, frame -> sound: R@1 %.3f, P@5 %.3f (%d pictures)" % (
            held_f2a[0] / held_f2a[2], held_f2a[1] / held_f2a[2], held_f2a[2]))
    print("sound -> frame R@1 by condition: %s" % ", ".join(
        "%s %.3f (%d)" % (name, right / count, count)
        for name, (right, count) in by_condition.items() if count))
    print("answers with a column of fewer than 5: %d of %d sound queries, %d of %d picture "
          "queries" % (short["audio"], len(queries), short["image"], len(frames)))
    if misses:
        print("sound -> frame misses@1 (%d): %s%s" % (len(misses), ", ".join(misses[:30]),
                                                      ", ..." if len(misses) > 30 else ""))
    for name, label, got in real:
        print("real recording %-32s (%s): frames %s" % (name, label, " ".join(got)))
    print("time: %.0f s" % (time.time() - started))
    ok = t("a2f", 0) >= 0.75 and t("a2f", 2) >= 0.7 and t("f2a", 1) >= 0.7
    print("targets (sound->frame R@1 >= 0.75, P@5c >= 0.7; frame->sound P@5 >= 0.7): %s"
          % ("met" if ok else "NOT met"))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
