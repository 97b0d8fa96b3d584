#!/usr/bin/python3
"""`ear serve` side by side with the Python services it replaces, in one run, alternating.

    /usr/bin/python3 bench/compare_seed.py --ear build/ear      (make bench runs this)
    /usr/bin/python3 bench/compare_seed.py --report-only bench/results.json

Two pairs.

The original's model (`--original-dir`, ../shared/peers/seed-python: the original service
itself). A full-size random-weight best_audio_visual_clip.pt (tools/make_original_model.py),
a small dataset in the original's layout and the indexed_db.pt the original builds from it at
its first start (not timed); Ear serves the same folder with `ear serve --project DIR`, one
search worker, one thread, once per weight type its `--weights` offers (the engine's default
when it has none). Both run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (the original's
OpenBLAS would otherwise take a second core); one more start of the original without them ("as
deployed") when ORIGINAL_DEPLOYED is not 0. Per start, ORIGINAL_ROUNDS rounds that reverse the
order: start to ready (/healthz), start to the first /query answer, idle RSS and PSS after one
answer of each kind, then ORIGINAL_REQUESTS answers at concurrency 1 of a 10 s WebM, a 3 s WebM
and a JPEG (p50, p90, CPU time per answer of the process tree), peak RSS; whether Ear's answers
list the original's items; `ear embed`'s peak RSS on the same inputs.

The compact family (`--compact-dir`, ../shared/peers/compact-python: Ear's compact model
family served the original's Python way, /api/search). Both services run on loopback with the
same model file, the same synthetic index (the same embeddings: compact-python's torch.save
format, and an Ear index written by tools/import_index.py's writer) and the same WebM/Opus
queries. Measured, alternating Ear and compact-python round by round so that a noisy machine
hurts both alike:

  - start to ready: from spawning the process to the first 200 from /healthz;
  - idle RSS and PSS, summed over every process of the service (/proc/PID/smaps_rollup);
  - peak RSS under load (the process tree sampled every 20 ms);
  - latency p50/p99 of a 5 s query, one request at a time and 4 at a time (a closed-loop
    client in this script, every latency kept);
  - throughput at saturation: answers per second at concurrency 4 (Ear: --workers 2, one per
    core; Python: gunicorn with 1 worker as the original was deployed, and with 2 workers);
  - latency as the clip grows (1, 5, 30, 60 s) and as the index grows (1e3, 1e5, 1e6 items);
  - the audio encoder alone (bench_nn) against this machine's one-thread sgemm peak, and
    where its time goes (perf).

Compact models: random weights (ResNet-18 audio, ResNet-50 image), F32 and F16, and
demo/model.safetensors when it exists. Results go to bench/results.json, then BENCHMARKS.md and
bench/benchmarks.png are written from them (text after the notes marker in an existing
BENCHMARKS.md is kept). Medians throughout. Needs ffmpeg, perf (optional), and Debian's
python3-torch, -torchaudio, -torchvision, -flask, -soundfile, -pil, -matplotlib and gunicorn.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import import_index  # noqa: E402  (the Ear index writer, shared with the converter)

PYTHON = "/usr/bin/python3"
NOTES_MARKER = "<!-- notes: everything below this line is kept when the harness rewrites the file -->"


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path, timeout=1.0):
    """The status of GET path, or None while nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            head = s.recv(64)
        return int(head.split()[1]) if head.startswith(b"HTTP/") else None
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------- processes

def children_map():
    """{ppid: [pid, ...]} for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def process_tree(pid):
    kids = children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(kids.get(p, []))
    return tree


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mib(pid):
    """(RSS, PSS) in MiB, summed over the process and its descendants."""
    tree = process_tree(pid)
    return (sum(status_kib(p, "VmRSS") for p in tree) / 1024.0,
            sum(pss_kib(p) for p in tree) / 1024.0)


class PeakSampler(threading.Thread):
    """The largest summed RSS of a process tree, sampled every 20 ms while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, memory_mib_rss_only(self.pid))
            self.stop_flag.wait(0.02)

    def stop(self):
        self.stop_flag.set()
        self.join()
        return self.peak


def memory_mib_rss_only(pid):
    return sum(status_kib(p, "VmRSS") for p in process_tree(pid)) / 1024.0


class Service:
    """One running service (Ear or the seed): started, measured, stopped."""

    def __init__(self, kind, work, ear, seed_dir, model, ear_index, seed_index, workers):
        """kind: "ear" (ear is the binary) or "seed"."""
        self.kind, self.work, self.port, self.proc = kind, work, free_port(), None
        self.log_path = os.path.join(work, "%s.log" % kind)
        if kind == "ear":
            self.argv = [ear, "serve", "--model", model, "--index", ear_index, "--data",
                         os.path.join(work, "data"), "--port", str(self.port), "--workers",
                         str(workers), "--threads", "1", "--queue", "64"]
            self.env = dict(os.environ)
        else:
            self.argv = [PYTHON, "-m", "gunicorn", "service:app", "--chdir", seed_dir,
                         "--bind", "127.0.0.1:%d" % self.port, "--workers", str(workers),
                         "--timeout", "600", "--preload"]
            self.env = dict(os.environ, EAR_MODEL=model, EAR_DATA=os.path.join(work, "data"),
                            EAR_INDEX_PT=seed_index, EAR_UPLOADS=os.path.join(work, "uploads"))

    def start(self, timeout=300.0):
        """Spawns the service; returns the seconds until /healthz first answered 200."""
        with open(self.log_path, "ab") as logf:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=logf, stderr=logf,
                                         stdin=subprocess.DEVNULL)
            while time.perf_counter() - t0 < timeout:
                if http_status(self.port, "/healthz") == 200:
                    return time.perf_counter() - t0
                if self.proc.poll() is not None:
                    break
                time.sleep(0.002)
        self.stop()
        raise RuntimeError("%s never became ready; see %s" % (self.kind, self.log_path))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def url(self):
        return "http://127.0.0.1:%d/api/search?k=8" % self.port


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-p * len(sorted_values) // 100)))
    return sorted_values[rank - 1]


def multipart_request(port, body_path, route="/api/search?k=8", field="audio",
                      filename="query.webm", content_type="audio/webm"):
    """The bytes of one upload as a web page sends it: by default the compact service's
    (multipart field "audio" to /api/search); the original's page posts field "file" to
    /query, and the file name's extension is what tells it a sound from an image."""
    boundary = b"----earbench7d1f0c2a"
    with open(body_path, "rb") as f:
        data = f.read()
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + field.encode() +
            b"\"; filename=\"" + filename.encode() + b"\"\r\nContent-Type: " +
            content_type.encode() + b"\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n"
            % (route, port, boundary.decode(), len(body))).encode()
    return head + body


def load(port, body_path, requests, concurrency, request=None):
    """Closed loop: `concurrency` clients each send the next upload as soon as their answer
    is in, until `requests` answers came back. Every latency is kept (from connect to the
    last byte); any answer but 200 fails the run. `request`: the bytes to send (default: the
    compact service's upload of body_path)."""
    if request is None:
        request = multipart_request(port, body_path)
    lock = threading.Lock()
    state = {"left": requests, "samples": [], "bad": []}

    def client():
        while True:
            with lock:
                if state["left"] <= 0:
                    return
                state["left"] -= 1
            t0 = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
                    s.sendall(request)
                    chunks = []
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        chunks.append(chunk)
                answer = b"".join(chunks)
                status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
            except (OSError, ValueError, IndexError) as e:
                answer, status = str(e).encode(), 0
            elapsed = time.perf_counter() - t0
            with lock:
                if status == 200:
                    state["samples"].append(elapsed * 1e6)
                else:
                    state["bad"].append(answer[:300])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.perf_counter() - t0
    if state["bad"]:
        raise RuntimeError("%d of %d searches failed on port %d: %r" % (
            len(state["bad"]), requests, port, state["bad"][0]))
    samples = sorted(state["samples"])
    return {"requests": len(samples), "concurrency": concurrency, "duration_us": duration * 1e6,
            "p50_us": statistics.median(samples), "p99_us": percentile(samples, 99),
            "min_us": samples[0], "max_us": samples[-1], "rps": len(samples) / duration,
            "samples_us": [round(v) for v in samples]}


def warm_up(port, body, count=3):
    load(port, body, count, 1)


# ---------------------------------------------------------------------------- inputs

def make_models(work, demo):
    models = {}
    for dtype in ("f32", "f16"):
        path = os.path.join(work, "model_%s.safetensors" % dtype)
        subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_random_model.py"), "--tower",
                        "both", "--dtype", dtype, "-o", path], check=True,
                       stderr=subprocess.DEVNULL)
        models["random " + dtype.upper()] = path
    audio = os.path.join(work, "audio_f32.safetensors")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_random_model.py"), "--tower",
                    "audio", "-o", audio], check=True, stderr=subprocess.DEVNULL)
    if os.path.exists(demo):
        models["demo"] = demo
    return models, audio


def fingerprint(ear, model):
    out = subprocess.run([ear, "info", model], capture_output=True, text=True, check=True).stdout
    return next(l.split()[1] for l in out.splitlines() if l.strip().startswith("fingerprint"))


def make_dataset(work, count_frames=8):
    data = os.path.join(work, "data")
    for sub in ("frames", "audio"):
        os.makedirs(os.path.join(data, sub), exist_ok=True)
    os.makedirs(os.path.join(work, "uploads"), exist_ok=True)
    return data


def synthetic_embeddings(n, dim, seed=7):
    rng = np.random.default_rng(seed)
    emb = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):  # in blocks: no float64 copy of a 1e6 x 512 matrix
        block = rng.standard_normal((min(65536, n - start), dim), dtype=np.float32)
        emb[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return emb


def make_indexes(work, n, dim, ear_fingerprints):
    """The seed's EAR_INDEX_PT with n synthetic items, and one Ear index per model (the
    same embeddings; an Ear index carries its model's fingerprint)."""
    import torch
    emb = synthetic_embeddings(n, dim)
    ids = ["item%07d" % i for i in range(n)]
    frames = [i + ".jpg" for i in ids]
    seed_pt = os.path.join(work, "seed_index_%d_%d.pt" % (n, dim))
    torch.save({"ids": ids, "labels": ["Item %d" % i for i in range(n)], "frames": frames,
                "audio": [None] * n, "embeddings": torch.from_numpy(emb)}, seed_pt)
    ear_paths = {}
    for name, fp in ear_fingerprints.items():
        path = os.path.join(work, "index_%d_%s.ear" % (n, fp))
        items = [{"kind": "image", "path": "frames/" + frames[i], "label": "Item %d" % i,
                  "embedding": emb[i]} for i in range(n)]
        import_index.write_index(path, fp, dim, "f32", items)
        ear_paths[name] = path
    return seed_pt, ear_paths


def make_queries(work, seconds_list):
    """Browser-like: Opus in WebM, 48 kHz stereo, a tone in pink noise."""
    out = {}
    for s in seconds_list:
        path = os.path.join(work, "query_%ds.webm" % s)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=440:duration=%d" % s, "-f", "lavfi", "-i",
                        "anoisesrc=d=%d:c=pink:a=0.1" % s, "-filter_complex", "amix=inputs=2",
                        "-ac", "2", "-ar", "48000", "-c:a", "libopus", "-b:a", "48k", path],
                       check=True)
        out[s] = path
    return out


def model_dim(path):
    return import_index.model_embed_dim(path)


# ---------------------------------------------------------------------------- measurements

def order(round_number):
    """Alternate who goes first, so that drift in the machine's load hurts both alike."""
    return ("ear", "seed") if round_number % 2 == 0 else ("seed", "ear")


def measure_model(args, work, name, model, ear_index, seed_index, query):
    """Start, memory, latency at 1 and 4, throughput: ROUNDS alternating rounds."""
    rows = {"ear": [], "seed": [], "seed2": [], "ear_before": []}
    for r in range(args.rounds):
        kinds = list(order(r))
        if args.ear_before:
            kinds.insert(1, "ear_before")  # between the two, so that both see the same load
        if r == 0 and args.seed_two_workers:
            kinds.append("seed2")
        for kind in kinds:
            workers = 1 if kind == "seed" else 2
            svc = Service("seed" if kind.startswith("seed") else "ear", work,
                          args.ear_before if kind == "ear_before" else args.ear, args.seed_dir,
                          model, ear_index, seed_index, workers)
            try:
                ready = svc.start()
                time.sleep(1.0)
                rss, pss = memory_mib(svc.proc.pid)
                warm_up(svc.port, query)
                row = {"ready_s": ready, "idle_rss": rss, "idle_pss": pss}
                if kind != "seed2":
                    row["c1"] = load(svc.port, query, args.requests, 1)
                sampler = PeakSampler(svc.proc.pid)
                sampler.start()
                row["c4"] = load(svc.port, query, args.requests * 2, 4)
                row["peak_rss"] = sampler.stop()
                row["after_rss"], row["after_pss"] = memory_mib(svc.proc.pid)
            finally:
                svc.stop()
            log("%s %s round %d: ready %.3f s, idle RSS %.0f MiB, c4 %.1f/s" % (
                name, kind, r + 1, ready, rss, row["c4"]["rps"]))
            rows[kind].append(row)
    return rows


def measure_clips(args, work, model, ear_index, seed_index, queries):
    out = {"ear": {}, "seed": {}}
    for r in range(args.sweep_rounds):
        for kind in order(r):
            svc = Service(kind, work, args.ear, args.seed_dir, model, ear_index, seed_index,
                          2 if kind == "ear" else 1)
            try:
                svc.start()
                for seconds, path in sorted(queries.items()):
                    warm_up(svc.port, path, 1)
                    n = max(4, args.requests // 2) if seconds >= 30 else args.requests
                    res = load(svc.port, path, n, 1)
                    out[kind].setdefault(str(seconds), []).append(res)
                    log("clip %d s %s: p50 %.1f ms" % (seconds, kind, res["p50_us"] / 1e3))
            finally:
                svc.stop()
    return out


def measure_index_sizes(args, work, model, fp, dim, sizes, query):
    out = {"ear": {}, "seed": {}}
    for n in sizes:
        t0 = time.perf_counter()
        seed_pt, ear_paths = make_indexes(work, n, dim, {"m": fp})
        log("index of %d items written in %.1f s" % (n, time.perf_counter() - t0))
        for r, kind in enumerate(order(sizes.index(n))):
            svc = Service(kind, work, args.ear, args.seed_dir, model, ear_paths["m"], seed_pt,
                          2 if kind == "ear" else 1)
            try:
                ready = svc.start()
                time.sleep(0.5)
                rss, pss = memory_mib(svc.proc.pid)
                warm_up(svc.port, query)
                res = load(svc.port, query, args.requests, 1)
                after_rss, after_pss = memory_mib(svc.proc.pid)
            finally:
                svc.stop()
            res.update(ready_s=ready, idle_rss=rss, idle_pss=pss, after_rss=after_rss,
                       after_pss=after_pss)
            out[kind][str(n)] = res
            log("index %d %s: ready %.2f s, RSS %.0f -> %.0f MiB, p50 %.1f ms" % (
                n, kind, ready, rss, after_rss, res["p50_us"] / 1e3))
        for path in [seed_pt] + list(ear_paths.values()):
            os.unlink(path)
    return out


def sgemm_peak(build_dir):
    """GFLOP/s of one-thread sgemm: bench_gemm when it is built, else numpy on OpenBLAS."""
    gemm = os.path.join(build_dir, "bench_gemm")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if os.access(gemm, os.X_OK):
        out = subprocess.run([gemm], capture_output=True, text=True, env=env).stdout
        peak = None
        for line in out.splitlines():
            if line.startswith("square") and "GFLOP/s" in line:
                peak = float(line.split(": ")[1].split(" GFLOP/s")[0])
        return {"source": "bench_gemm's square product", "output": out.strip()[-3000:],
                "gflops": peak}
    code = (
        "import json, numpy as np, time\n"
        "best = {}\n"
        "for n in (512, 1024, 2048):\n"
        "    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)\n"
        "    a @ b\n"
        "    ts = []\n"
        "    for _ in range(7):\n"
        "        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)\n"
        "    ts.sort(); best[n] = (2 * n ** 3 / ts[len(ts) // 2] / 1e9, 2 * n ** 3 / ts[0] / 1e9)\n"
        "print(json.dumps(best))\n")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    best = json.loads(out)
    median_peak = max(v[0] for v in best.values())
    return {"source": "numpy sgemm on OpenBLAS, one thread, n = 512/1024/2048 (median of 7)",
            "per_size": best, "gflops": median_peak}


def encoder(args, audio_model):
    out = {}
    bench_nn = os.path.join(args.build_dir, "bench_nn")
    if os.access(bench_nn, os.X_OK):
        text = subprocess.run([bench_nn, audio_model, "--runs", "15"], capture_output=True,
                              text=True).stdout
        out["bench_nn"] = text.strip()
        for line in text.splitlines():
            if line.startswith("audio"):
                out["median_ms"] = float(line.split("median ")[1].split(" ms")[0])
                out["gflop"] = float(line.split("; ")[1].split(" GFLOP")[0])
                out["gflops"] = float(line.split("GFLOP per pass, ")[1].split(" GFLOP/s")[0])
    torch_out = subprocess.run([PYTHON, os.path.join(ROOT, "bench", "bench_torch.py"),
                                audio_model, "--runs", "15"], capture_output=True, text=True)
    out["torch"] = torch_out.stdout.strip()
    for line in torch_out.stdout.splitlines():
        if line.startswith("audio") and "median " in line:
            out["torch_median_ms"] = float(line.split("median ")[1].split(" ms")[0])
    out["peak"] = sgemm_peak(args.build_dir)
    if shutil.which("perf") and os.access(bench_nn, os.X_OK):
        data = os.path.join(args.work, "perf.data")
        rec = subprocess.run(["perf", "record", "-q", "-o", data, "--", bench_nn, audio_model,
                              "--runs", "20"], capture_output=True, text=True)
        if rec.returncode == 0:
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", "dso,symbol", "--percent-limit", "0.7"],
                                 capture_output=True, text=True).stdout
            out["perf"] = [l.rstrip() for l in rep.splitlines()
                           if l.strip() and not l.startswith("#")][:14]
        else:
            out["perf_error"] = (rec.stderr or rec.stdout).strip()[-300:]
    return out


# ---------------------------------------------------------------------------- the original's model

# The three /query uploads timed against the original (key, what, file name, content type).
ORIGINAL_QUERIES = (("webm10", "10 s WebM", "query.webm", "audio/webm"),
                    ("webm3", "3 s WebM", "query.webm", "audio/webm"),
                    ("jpeg", "JPEG 640 × 480", "query.jpg", "image/jpeg"))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def cpu_seconds(pid):
    """CPU time (user + system, reaped children included) of a process tree, in seconds:
    the peer's ffmpeg subprocesses land in its worker's children's time once waited for."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    return total / tick


def make_original_project(work):
    """The original's folder layout (what `ear serve --project` takes and what the peer is
    started on): DIR/pretrained_models/best_audio_visual_clip.pt, full size, random weights
    (tools/make_original_model.py), and DIR/ear_data/{audio,frames}/<label>/ with WAVs and
    JPEGs. indexed_db.pt is written by the peer itself at its first start. Also the queries:
    a 10 s and a 3 s WebM/Opus (48 kHz stereo, as a browser records) and a 640 × 480 JPEG."""
    from PIL import Image
    proj = os.path.join(work, "original")
    models = os.path.join(proj, "pretrained_models")
    os.makedirs(models)
    model = os.path.join(models, "best_audio_visual_clip.pt")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_original_model.py"), model],
                   check=True)
    data = os.path.join(proj, "ear_data")
    rng = np.random.default_rng(11)
    labels = ("violin", "drum kit", "flute")
    for i, label in enumerate(labels):
        for sub in ("audio", "frames"):
            os.makedirs(os.path.join(data, sub, label))
        for j in range(2):
            seconds = (2, 4)[j]
            src = ("sine=frequency=%d:duration=%d" % (220 * (i + 1) + 110 * j, seconds)
                   if j == 0 else "anoisesrc=d=%d:c=pink:seed=%d" % (seconds, i + 1))
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                            "-ar", "44100", "-ac", "2",
                            os.path.join(data, "audio", label, "clip%d.wav" % j)], check=True)
            Image.fromarray(synthetic_photo(rng, 640, 480)).save(
                os.path.join(data, "frames", label, "frame%d.jpg" % j), quality=90)
    qdir = os.path.join(work, "original-queries")
    os.makedirs(qdir)
    clips = make_queries(qdir, [10, 3])
    queries = {"webm10": clips[10], "webm3": clips[3]}
    queries["jpeg"] = os.path.join(qdir, "query.jpg")
    Image.fromarray(synthetic_photo(rng, 640, 480)).save(queries["jpeg"], quality=90)
    return proj, model, data, queries


def synthetic_photo(rng, width, height):
    """Something a JPEG encoder treats like a photograph: gradients, blobs and grain."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.002, 0.02), rng.uniform(0.002, 0.02), rng.uniform(0, 6.3)
        img[..., c] = 128 + 90 * np.sin(fx * x + ph) * np.cos(fy * y)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(30, 120)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def ear_weights(ear):
    """The weight types `ear serve` takes (--weights), or [None] when this engine has no such
    option (then its one default is measured)."""
    out = subprocess.run([ear, "serve", "--help"], capture_output=True, text=True)
    return ["f32", "bf16", "int8"] if "--weights" in out.stdout + out.stderr else [None]


def ear_default_weights(ear):
    """What `ear serve` runs without --weights: EAR_WEIGHTS, else the default its help names."""
    if os.environ.get("EAR_WEIGHTS"):
        return "%s (EAR_WEIGHTS)" % os.environ["EAR_WEIGHTS"]
    out = subprocess.run([ear, "serve", "--help"], capture_output=True, text=True).stdout
    m = re.search(r"^ +--weights T[^\n]*(?:\n {10,}[^\n]*)*?\(default (\w+)", out, re.M)
    return m.group(1) if m else "the engine's only one"


class OriginalService(Service):
    """Ear (`ear serve --project DIR`, one search worker, one thread) or the original
    (seed-python under gunicorn, one worker, --preload) on the same project folder."""

    def __init__(self, kind, work, args, proj, weights=None, one_thread=True):
        self.kind, self.work, self.port, self.proc = kind, work, free_port(), None
        self.log_path = os.path.join(work, "original-%s.log" % kind)
        env = dict(os.environ, **ONE_THREAD) if one_thread else dict(os.environ)
        if kind == "ear":
            self.argv = [args.ear, "serve", "--project", proj, "--port", str(self.port),
                         "--workers", "1", "--threads", "1"]
            if weights:
                self.argv += ["--weights", weights]
        else:
            self.argv = [PYTHON, "-m", "gunicorn", "service:app", "--chdir", args.original_dir,
                         "--bind", "127.0.0.1:%d" % self.port, "--workers", "1",
                         "--timeout", "600", "--preload"]
            if not one_thread:  # as deployed: OpenBLAS picks its own thread count
                for k in ONE_THREAD:
                    env.pop(k, None)
            env.update(EAR_MODEL=os.path.join(proj, "pretrained_models",
                                              "best_audio_visual_clip.pt"),
                       EAR_INDEX_PT=os.path.join(proj, "indexed_db.pt"),
                       EAR_DATA=os.path.join(proj, "ear_data"),
                       EAR_UPLOADS=os.path.join(work, "original-uploads"))
        self.env = env


def post_once(port, request):
    """One request; (seconds, status, body)."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return time.perf_counter() - t0, status, answer.split(b"\r\n\r\n", 1)[-1]


def original_requests(port, queries):
    return {key: multipart_request(port, queries[key], "/query", "file", filename, ctype)
            for key, _, filename, ctype in ORIGINAL_QUERIES}


def measure_original_start(args, work, proj, queries, kind, weights=None, one_thread=True):
    """One start of one service: start to ready (/healthz) and to the first answer (the 3 s
    WebM sent as soon as it is ready), idle RSS/PSS once each kind of query has been
    answered once, then REQUESTS answers of each query at c=1 (latencies, CPU seconds per
    answer from the process tree's CPU time, peak RSS)."""
    svc = OriginalService(kind, work, args, proj, weights, one_thread)
    try:
        t0 = time.perf_counter()
        ready = svc.start()
        reqs = original_requests(svc.port, queries)
        _, status, body = post_once(svc.port, reqs["webm3"])
        first = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError("%s: first /query answered %d: %r" % (kind, status, body[:300]))
        # Every CPU second the service spent from its start to its first answer (steadier
        # than the wall clock on a shared machine); read after the answer, so it costs the
        # timing nothing.
        row = {"ready_s": ready, "first_answer_s": first,
               "first_answer_cpu_s": cpu_seconds(svc.proc.pid), "answers": {}}
        for key in ("webm10", "jpeg"):
            _, status, body = post_once(svc.port, reqs[key])
            if status != 200:
                raise RuntimeError("%s: /query %s answered %d: %r" % (kind, key, status,
                                                                     body[:300]))
            row["answers"][key] = json.loads(body)
        time.sleep(1.0)
        row["idle_rss"], row["idle_pss"] = memory_mib(svc.proc.pid)
        sampler = PeakSampler(svc.proc.pid)
        sampler.start()
        for key, _, _, _ in ORIGINAL_QUERIES:
            cpu0 = cpu_seconds(svc.proc.pid)
            res = load(svc.port, None, args.original_requests, 1, request=reqs[key])
            res["cpu_s"] = (cpu_seconds(svc.proc.pid) - cpu0) / res["requests"]
            row[key] = res
        row["peak_rss"] = sampler.stop()
    finally:
        svc.stop()
    return row


def ear_embed_peak(args, model, queries, weights):
    """Peak RSS (MiB) and seconds of one `ear embed` of the 10 s WebM and of the JPEG."""
    out = {}
    for key, flag in (("webm10", "--audio"), ("jpeg", "--image")):
        argv = [args.ear, "embed", "--model", model, flag, queries[key], "-o", os.devnull]
        if weights:
            argv += ["--weights", weights]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=dict(os.environ, **ONE_THREAD))
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out[key] = {"error": err.strip()[-300:]}
        else:
            out[key] = {"peak_rss": usage.ru_maxrss / 1024.0, "seconds": seconds,
                        "cpu_s": usage.ru_utime + usage.ru_stime}
    return out


def measure_original(args, work):
    """The original's model, full size: Ear against seed-python on the same project."""
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    t_start = time.time()
    proj, model, data, queries = make_original_project(work)
    # The peer's first start builds indexed_db.pt from the dataset (the original's own way);
    # Ear then serves that file as it is. This start is not measured.
    t0 = time.perf_counter()
    prep = OriginalService("seed", work, args, proj)
    try:
        prep.start(timeout=900)
    finally:
        prep.stop()
    if not os.path.exists(os.path.join(proj, "indexed_db.pt")):
        raise RuntimeError("the peer wrote no indexed_db.pt; see %s" % prep.log_path)
    log("original: peer built indexed_db.pt in %.1f s" % (time.perf_counter() - t0))
    variants = ["ear:%s" % (w or "default") for w in ear_weights(args.ear)]
    rows = {v: [] for v in ["seed"] + variants}
    if args.original_deployed:
        rows["seed_deployed"] = []
    for r in range(args.original_rounds):
        kinds = ["seed"] + variants
        if r % 2:
            kinds.reverse()
        if r == 0 and args.original_deployed:
            kinds.append("seed_deployed")
        for kind in kinds:
            weights = kind.split(":", 1)[1] if kind.startswith("ear:") else None
            row = measure_original_start(
                args, work, proj, queries, "ear" if kind.startswith("ear") else "seed",
                None if weights == "default" else weights, kind != "seed_deployed")
            rows[kind].append(row)
            log("original %s round %d: ready %.2f s, first answer %.2f s, idle RSS %.0f MiB, "
                "p50 10 s %.0f ms, 3 s %.0f ms, JPEG %.0f ms" % (
                    kind, r + 1, row["ready_s"], row["first_answer_s"], row["idle_rss"],
                    row["webm10"]["p50_us"] / 1e3, row["webm3"]["p50_us"] / 1e3,
                    row["jpeg"]["p50_us"] / 1e3))
    embed = {}
    for v in variants:
        w = v.split(":", 1)[1]
        embed[v] = ear_embed_peak(args, model, queries, None if w == "default" else w)
    # Do Ear's answers list what the peer's do? (the same items, first round's answers)
    agree = {}
    for v in variants:
        same = []
        for key in ("webm10", "jpeg"):
            a, b = rows["seed"][0]["answers"][key], rows[v][0]["answers"][key]
            same.append(all([x["url"] for x in a[c]] == [x["url"] for x in b[c]]
                            for c in ("same_modality", "cross_modality")))
        agree[v] = same
    for kind in rows:
        for row in rows[kind]:
            row.pop("answers", None)
    return {"rows": rows, "embed": embed, "agree": agree,
            "items": len(torch_index_items(proj)),
            "model_mb": os.path.getsize(model) / 1e6,
            "rounds": args.original_rounds, "requests": args.original_requests,
            "load_start": load_start,
            "load_end": " ".join(open("/proc/loadavg").read().split()[:3]),
            "minutes": (time.time() - t_start) / 60}


def torch_index_items(proj):
    import torch
    return torch.load(os.path.join(proj, "indexed_db.pt"), map_location="cpu")["metadata"]


def summarise_original(runs):
    """Medians over the rounds of one service; latency percentiles pooled over every answer
    of every round."""
    if not runs:
        return None
    s = {k: median([r.get(k) for r in runs]) for k in ("ready_s", "first_answer_s",
                                                       "first_answer_cpu_s", "idle_rss",
                                                       "idle_pss", "peak_rss")}
    for key, _, _, _ in ORIGINAL_QUERIES:
        s[key + "_p50"] = pooled(runs, key, 50)
        s[key + "_p90"] = pooled(runs, key, 90)
        s[key + "_cpu"] = median([r[key]["cpu_s"] * 1e3 for r in runs])
    return s


def variant_label(kind):
    w = kind.split(":", 1)[1]
    return "Ear (engine's default weights)" if w == "default" else "Ear %s" % w


def write_original(o, w, targets):
    rows = o["rows"]
    peer = summarise_original(rows["seed"])
    variants = [k for k in rows if k.startswith("ear:")]
    sums = {v: summarise_original(rows[v]) for v in variants}
    w("## The original's model: Ear's `/query` against the original service (seed-python)")
    w("")
    w("The full-size model in the original's own file, `best_audio_visual_clip.pt` (%.0f MB, "
      "random weights: `tools/make_original_model.py`, torchaudio's `wav2vec2_base` + "
      "torchvision's `resnet50` + the two heads as `../shared/spec/original.md` says), a "
      "dataset in the original's layout (`ear_data/audio/<label>/*.wav`, "
      "`ear_data/frames/<label>/*.jpg`: %d items) and the `indexed_db.pt` the original service "
      "built from it at its first start. The same folder is served by both: Ear as "
      "`ear serve --project DIR --workers 1 --threads 1%s` (it reads `indexed_db.pt` as it "
      "is), the original as its README says (gunicorn, 1 worker, `--preload`, PyTorch "
      "`set_num_threads(1)`). Both run strictly one thread: `OMP_NUM_THREADS=1 "
      "OPENBLAS_NUM_THREADS=1` for both. Queries, posted as the original's page does "
      "(multipart field `file` to `/query`): a 10 s and a 3 s WebM/Opus (48 kHz stereo, as a "
      "browser records) and a 640 × 480 JPEG. %d rounds, the order of the services reversed "
      "every round; per start: start to ready (first 200 from `/healthz`), start to the first "
      "answer (the 3 s WebM posted as soon as it is ready), idle RSS/PSS of the whole process "
      "tree 1 s after one answer of each kind, then %d answers of each query at concurrency 1 "
      "(p50 and p90 pooled over every answer of every round; CPU per answer = the process "
      "tree's user + system time over the batch, the peer's ffmpeg subprocesses included). "
      "Load average at the start of this part: %s; at its end: %s (2 cores: above 2 means other "
      "work was waiting for a core, which stretches wall times; CPU per answer is the steadier "
      "figure)."
      % (o["model_mb"], o["items"], " --weights T" if variants[0] != "ear:default" else "",
         o["rounds"], o["requests"], o["load_start"], o["load_end"]))
    w("")
    head = "| measure | seed-python |"
    rule = "| --- | ---: |"
    for v in variants:
        head += " %s | ratio |" % variant_label(v)
        rule += " ---: | ---: |"
    w(head)
    w(rule)
    measures = [("start to ready (s)", "ready_s", 2), ("start to first answer (s)",
                                                      "first_answer_s", 2),
                ("CPU from start to first answer (s)", "first_answer_cpu_s", 2),
                ("idle RSS (MiB)", "idle_rss", 1), ("idle PSS (MiB)", "idle_pss", 1),
                ("peak RSS while answering (MiB)", "peak_rss", 1)]
    for key, what, _, _ in ORIGINAL_QUERIES:
        measures += [("%s: latency p50 (ms)" % what, key + "_p50", 1),
                     ("%s: latency p90 (ms)" % what, key + "_p90", 1),
                     ("%s: CPU per answer (ms)" % what, key + "_cpu", 1)]
    for label, key, digits in measures:
        line = "| %s | %s |" % (label, fmt(peer[key], digits))
        for v in variants:
            line += " %s | %s |" % (fmt(sums[v][key], digits), fmt(ratio(sums[v][key],
                                                                          peer[key]), 3))
        w(line)
    line = "| the peer's items in the peer's order (10 s WebM; JPEG) | — |"
    for v in variants:
        line += " %s | |" % "; ".join("yes" if a else "no" for a in o["agree"][v])
    w(line)
    w("")
    dep = summarise_original(rows.get("seed_deployed"))
    if dep:
        w("The original as deployed (no thread variables: Debian's OpenBLAS starts its own "
          "threads, which `torch.set_num_threads(1)` does not limit), one start: 10 s WebM p50 "
          "%s ms (CPU %s ms per answer), 3 s WebM %s ms (CPU %s ms), JPEG %s ms (CPU %s ms); "
          "idle RSS %s MiB." % (fmt(dep["webm10_p50"]), fmt(dep["webm10_cpu"]),
                                fmt(dep["webm3_p50"]), fmt(dep["webm3_cpu"]),
                                fmt(dep["jpeg_p50"]), fmt(dep["jpeg_cpu"]),
                                fmt(dep["idle_rss"])))
        w("")
    embed = o.get("embed") or {}
    if embed:
        w("`ear embed --model best_audio_visual_clip.pt` alone, one process per embedding, one "
          "thread (peak RSS from the kernel's accounting of the finished process; its ratio "
          "is against the peer's idle RSS above):")
        w("")
        w("| weights | 10 s WebM: peak RSS (MiB) | ratio | wall (s) | JPEG: peak RSS (MiB) | "
          "ratio | wall (s) |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for v in variants:
            e = embed.get(v, {})
            cells = []
            for key in ("webm10", "jpeg"):
                x = e.get(key, {})
                if "error" in x:
                    cells.append("failed: %s | | " % x["error"].replace("|", "/")[:120])
                else:
                    cells.append("%s | %s | %s" % (fmt(x.get("peak_rss")),
                                                   fmt(ratio(x.get("peak_rss"),
                                                             peer["idle_rss"]), 3),
                                                   fmt(x.get("seconds"), 2)))
            w("| %s | %s | %s |" % (v.split(":", 1)[1].replace("default", "engine's default"),
                                    cells[0], cells[1]))
        w("")
    for v in variants:
        e = sums[v]
        r_rss = ratio(e["idle_rss"], peer["idle_rss"])
        r_first = ratio(e["first_answer_s"], peer["first_answer_s"])
        r_first_cpu = ratio(e.get("first_answer_cpu_s"), peer.get("first_answer_cpu_s"))
        r_10 = ratio(e["webm10_p50"], peer["webm10_p50"])
        r_10_cpu = ratio(e["webm10_cpu"], peer["webm10_cpu"])
        targets.append(("original, %s" % variant_label(v), [
            ("idle RSS ≤ 1/4 of the peer's (RSS; PSS)", "%s; %s" % (
                fmt(r_rss, 3), fmt(ratio(e["idle_pss"], peer["idle_pss"]), 3)),
             (r_rss or 1) <= 0.25),
            ("start to first answer ≤ 1/10 of the peer's (wall, judged; CPU)", "%s; %s" % (
                fmt(r_first, 3), fmt(r_first_cpu, 3)), (r_first or 1) <= 0.1),
            ("10 s WebM /query ≤ 0.25× the peer's (p50 wall, judged; CPU per answer; the "
             "issue's target for the embedding, here with decoding and search)", "%s; %s" % (
                 fmt(r_10, 3), fmt(r_10_cpu, 3)), (r_10 or 1) <= 0.25),
        ]))


def measure_compact(args, work, skip, results):
    """The compact family's parts (models, clips, sizes, encoder) into results; returns
    the models measured {name: path}."""
    log("models, index and queries in", work)
    models, audio_model = make_models(work, os.path.join(ROOT, "demo", "model.safetensors"))
    make_dataset(work)
    fps = {name: fingerprint(args.ear, path) for name, path in models.items()}
    queries = make_queries(work, [int(s) for s in args.clips.split(",")])
    by_dim = {}
    for name, path in models.items():
        by_dim.setdefault(model_dim(path), {})[name] = fps[name]
    indexes = {}
    for dim, named in by_dim.items():
        seed_pt, ear_paths = make_indexes(work, args.items, dim, named)
        for name in named:
            indexes[name] = (ear_paths[name], seed_pt)
    if "models" not in skip:
        for name, path in models.items():
            log("== model", name)
            results["models"][name] = measure_model(args, work, name, path, indexes[name][0],
                                                    indexes[name][1], queries[5])
    f32 = models["random F32"]
    if "clips" not in skip:
        log("== clip lengths")
        results["clips"] = measure_clips(args, work, f32, indexes["random F32"][0],
                                         indexes["random F32"][1], queries)
    if "sizes" not in skip:
        log("== index sizes")
        results["index_sizes"] = measure_index_sizes(
            args, work, f32, fps["random F32"], model_dim(f32),
            [int(s) for s in args.sizes.split(",")], queries[5])
    if "encoder" not in skip:
        log("== encoder")
        results["encoder"] = encoder(args, audio_model)
    return models


# ---------------------------------------------------------------------------- report

def fmt(v, digits=1):
    if v is None:
        return "—"
    if v >= 100:
        return "%.0f" % v
    return ("%%.%df" % digits) % v


def ratio(ear, seed):
    return (ear / seed) if ear is not None and seed else None


def pooled(runs, key, p):
    """Percentile p, in ms, of the latencies of every run (every round) together."""
    samples = sorted(v for r in runs if key in r for v in r[key]["samples_us"])
    if not samples:
        return None
    return (statistics.median(samples) if p == 50 else percentile(samples, p)) / 1e3


def clip_stat(runs, p):
    return pooled([{"x": r} for r in runs], "x", p)


def summarise_model(rows):
    def pick(kind, f):
        return median([f(r) for r in rows.get(kind, [])])
    s = {}
    for kind in ("ear", "seed", "seed2", "ear_before"):
        s[kind] = {
            "ready_s": pick(kind, lambda r: r["ready_s"]),
            "idle_rss": pick(kind, lambda r: r["idle_rss"]),
            "idle_pss": pick(kind, lambda r: r["idle_pss"]),
            "peak_rss": pick(kind, lambda r: r["peak_rss"]),
            "c1_p50": pooled(rows.get(kind, []), "c1", 50),
            "c1_p99": pooled(rows.get(kind, []), "c1", 99),
            "c4_p50": pooled(rows.get(kind, []), "c4", 50),
            "c4_p99": pooled(rows.get(kind, []), "c4", 99),
            "rps": pick(kind, lambda r: r["c4"]["rps"]),
        }
    return s


def write_report(results, md_path, png_path):
    meta = results["meta"]
    lines = []
    w = lines.append
    w("# Benchmarks: `ear serve` against the Python services")
    w("")
    w("Written by `make bench` (`bench/compare_seed.sh` → `bench/compare_seed.py`) on %s, %s; "
      "took %.1f min. %d CPU cores (%s), %s. Load average at the start: %s; at the end: %s. "
      "Two pairs, each measured side by side in one run, alternating which service goes first "
      "round by round so that drift in the machine's load hurts both alike: **the original's "
      "model** (wav2vec2-base + ResNet-50 from `best_audio_visual_clip.pt`): Ear's `/query` "
      "against the original service itself (`../shared/peers/seed-python`), and **the compact "
      "model family** (log-mel ResNets): Ear's `/api/search` against the same family served the "
      "original's Python way (`../shared/peers/compact-python`). Every figure is a median unless "
      "said; ratio = Ear / Python (below 1 is better for memory, time and latency; above 1 for "
      "throughput)."
      % (meta["date"], meta["host"], meta["minutes"], meta["cores"], meta["cpu"], meta["build"],
         meta["load_start"], meta["load_end"]))
    w("")
    targets = []
    if results.get("original"):
        write_original(results["original"], w, targets)
    if results.get("models"):
        w("## The compact model family: Ear's `/api/search` against compact-python")
        w("")
        w("Both services on loopback, the same model file, the same synthetic index (%d items "
          "unless said), the same WebM/Opus query (5 s unless said), the client in "
          "`bench/compare_seed.py` (closed loop, a new connection per upload, multipart as the "
          "web page sends it; percentiles over every answer of every round). Ear: `ear serve "
          "--workers 2 --threads 1`, weights %s; compact-python: gunicorn, 1 sync worker, "
          "`--preload`, PyTorch at 1 thread, as the original was deployed. The model rows over "
          "%d rounds.%s"
          % (meta["items"], meta.get("ear_weights", "as the engine loads them"), meta["rounds"],
             " Load average at the start of this part: %s; at its end: %s." % (
                 meta["compact_load_start"], meta["compact_load_end"])
             if meta.get("compact_load_start") else ""))
        w("")
    for name, rows in results["models"].items():
        s = summarise_model(rows)
        e, p, p2 = s["ear"], s["seed"], s["seed2"]
        w("### Model: %s (%s MB file)" % (name, meta["model_mb"].get(name, "?")))
        w("")
        w("| measure | Ear | compact-python | ratio Ear/Python |")
        w("| --- | ---: | ---: | ---: |")
        for label, key, unit in (("start to ready", "ready_s", "s"),
                                 ("idle RSS", "idle_rss", "MiB"), ("idle PSS", "idle_pss", "MiB"),
                                 ("peak RSS under load (c=4)", "peak_rss", "MiB"),
                                 ("latency p50, c=1", "c1_p50", "ms"),
                                 ("latency p99, c=1", "c1_p99", "ms"),
                                 ("latency p50, c=4", "c4_p50", "ms"),
                                 ("latency p99, c=4", "c4_p99", "ms"),
                                 ("throughput at c=4", "rps", "answers/s")):
            digits = 3 if key == "ready_s" else 1
            w("| %s (%s) | %s | %s | %s |" % (label, unit, fmt(e[key], digits),
                                              fmt(p[key], digits),
                                              fmt(ratio(e[key], p[key]), 3)))
        if p2["rps"]:
            w("| throughput, Python with 2 workers (answers/s) | %s | %s | %s |" % (
                fmt(e["rps"]), fmt(p2["rps"]), fmt(ratio(e["rps"], p2["rps"]), 3)))
            w("| idle RSS / PSS, Python with 2 workers (MiB) | | %s / %s | |" % (
                fmt(p2["idle_rss"]), fmt(p2["idle_pss"])))
        w("")
        b = s["ear_before"]
        if b["idle_rss"]:
            w("Before/after (%s), same rounds:" % (
                meta.get("before_label") or "EAR_BEFORE: %s" % meta.get("before")))
            w("")
            w("| measure | Ear before | Ear after | after/before |")
            w("| --- | ---: | ---: | ---: |")
            for label, key in (("start to ready (s)", "ready_s"), ("idle RSS (MiB)", "idle_rss"),
                               ("idle PSS (MiB)", "idle_pss"),
                               ("peak RSS under load (MiB)", "peak_rss"),
                               ("latency p50, c=1 (ms)", "c1_p50"),
                               ("throughput at c=4 (answers/s)", "rps")):
                w("| %s | %s | %s | %s |" % (label, fmt(b[key], 3 if key == "ready_s" else 1),
                                             fmt(e[key], 3 if key == "ready_s" else 1),
                                             fmt(ratio(e[key], b[key]), 3)))
            w("")
        best_seed_rps = max(v for v in (p["rps"], p2["rps"]) if v) if p["rps"] else None
        targets.append((name, [
            ("RSS ≤ 1/8 of the Python service's (idle; peak)", "%s; %s" % (
                fmt(ratio(e["idle_rss"], p["idle_rss"]), 3),
                fmt(ratio(e["peak_rss"], p["peak_rss"]), 3)),
             ratio(e["idle_rss"], p["idle_rss"]) is not None and
             ratio(e["idle_rss"], p["idle_rss"]) <= 1 / 8 and
             ratio(e["peak_rss"], p["peak_rss"]) <= 1 / 8),
            ("start to ready ≤ 1/20", fmt(ratio(e["ready_s"], p["ready_s"]), 4),
             (ratio(e["ready_s"], p["ready_s"]) or 1) <= 1 / 20),
            ("p50 latency ≤ 1/2 (c=1; c=4)", "%s; %s" % (
                fmt(ratio(e["c1_p50"], p["c1_p50"]), 3), fmt(ratio(e["c4_p50"], p["c4_p50"]), 3)),
             (ratio(e["c1_p50"], p["c1_p50"]) or 1) <= 0.5 and
             (ratio(e["c4_p50"], p["c4_p50"]) or 1) <= 0.5),
            ("throughput ≥ 2× (vs Python's 1 worker; vs its best)", "%s; %s" % (
                fmt(ratio(e["rps"], p["rps"]), 2), fmt(ratio(e["rps"], best_seed_rps), 2)),
             (ratio(e["rps"], best_seed_rps) or 0) >= 2),
        ]))

    clips = results.get("clips")
    if clips:
        w("### Latency as the clip grows (random F32 model, c=1)")
        w("")
        w("| clip (s) | Ear p50 (ms) | Python p50 (ms) | ratio | Ear p99 (ms) | Python p99 (ms) |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for seconds in sorted(clips["ear"], key=float):
            e50, e99 = clip_stat(clips["ear"][seconds], 50), clip_stat(clips["ear"][seconds], 99)
            s50, s99 = clip_stat(clips["seed"][seconds], 50), clip_stat(clips["seed"][seconds], 99)
            w("| %s | %s | %s | %s | %s | %s |" % (seconds, fmt(e50), fmt(s50),
                                                  fmt(ratio(e50, s50), 3), fmt(e99), fmt(s99)))
        w("")
    sizes = results.get("index_sizes")
    if sizes:
        w("### As the index grows (random F32 model, 5 s query, c=1; F32 embeddings)")
        w("")
        w("| items | Ear ready (s) | Python ready (s) | Ear RSS idle → after (MiB) | "
          "Python RSS idle → after (MiB) | Ear PSS after | Python PSS after | Ear p50 (ms) | "
          "Python p50 (ms) | ratio p50 |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in sorted(sizes["ear"], key=int):
            e, p = sizes["ear"][n], sizes["seed"][n]
            w("| %s | %s | %s | %s → %s | %s → %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(int(n)), fmt(e["ready_s"], 3), fmt(p["ready_s"], 2),
                fmt(e["idle_rss"]), fmt(e["after_rss"]), fmt(p["idle_rss"]),
                fmt(p["after_rss"]), fmt(e["after_pss"]), fmt(p["after_pss"]),
                fmt(e["p50_us"] / 1e3), fmt(p["p50_us"] / 1e3),
                fmt(ratio(e["p50_us"], p["p50_us"]), 3)))
        w("")
        w("Ear maps the index file, so its RSS after searching includes the index's pages, "
          "which are shared, clean page cache (the kernel can drop them); compact-python holds the "
          "same embeddings in anonymous memory after `torch.load`.")
        w("")
    enc = results.get("encoder")
    if enc:
        w("### The compact audio encoder alone (ResNet-18 on a 64 × 501 log-mel, one thread)")
        w("")
        peak = enc["peak"]
        w("- Ear (`bench_nn`, wave → embedding incl. log-mel): median **%s ms**, %s GFLOP per "
          "pass, **%s GFLOP/s**." % (fmt(enc.get("median_ms")), enc.get("gflop"),
                                     fmt(enc.get("gflops"))))
        if enc.get("torch_median_ms"):
            w("- PyTorch (`bench/bench_torch.py`, same model and input, 1 thread): median %s ms "
              "(Ear/PyTorch = %s)." % (fmt(enc["torch_median_ms"]),
                                       fmt(ratio(enc.get("median_ms"), enc["torch_median_ms"]), 3)))
        if peak.get("gflops"):
            share = enc.get("gflops", 0) / peak["gflops"]
            w("- One-thread sgemm peak on this machine (%s): **%s GFLOP/s**, so the encoder "
              "runs at %.0f%% of it — target \"within 2× of peak\": **%s**." % (
                  peak["source"], fmt(peak["gflops"]), 100 * share,
                  "met" if share >= 0.5 else "not met"))
            targets.append(("encoder", [("encoder ≥ 1/2 of one-thread sgemm peak",
                                         "%.0f%%" % (100 * share), share >= 0.5)]))
        if peak.get("output"):
            w("")
            w("`bench_gemm` (OpenBLAS sgemm at one thread, the audio tower's own shapes):")
            w("")
            w("```")
            lines.extend(peak["output"].splitlines())
            w("```")
        if enc.get("perf"):
            w("")
            w("Where the time goes (`perf record` of `bench_nn`, self time by library and "
              "symbol):")
            w("")
            w("```")
            lines.extend(enc["perf"])
            w("```")
        elif enc.get("perf_error"):
            w("- perf did not run: %s" % enc["perf_error"])
        w("")
    w("## Targets")
    w("")
    w("| model | target | figure | met? |")
    w("| --- | --- | ---: | --- |")
    for name, items in targets:
        for what, figure, ok in items:
            w("| %s | %s | %s | %s |" % (name, what, figure, "met" if ok else "**not met**"))
    w("")
    if results.get("models"):
        w("![compact family: latency and memory against clip length and index size]"
          "(bench/benchmarks.png)")
        w("")
    w("Rerun: `make bench` (installs the peers' Debian packages, builds, runs everything: "
      "about %.0f minutes here). Quicker: `ROUNDS=1 REQUESTS=10 ORIGINAL_ROUNDS=1 "
      "ORIGINAL_REQUESTS=4 SIZES=1000,100000 make bench`; one pair only: `SKIP=compact` or "
      "`SKIP=original` (`bench/compare_seed.sh` lists every variable). Raw numbers: "
      "`bench/results.json`; rewrite this page from them: "
      "`/usr/bin/python3 bench/compare_seed.py --report-only bench/results.json`."
      % meta["minutes"])
    w("")
    notes = ""
    if os.path.exists(md_path):
        old = open(md_path, encoding="utf-8").read()
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1]
    w(NOTES_MARKER + notes.rstrip("\n"))
    with open(md_path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(md_path + ".tmp", md_path)
    plot(results, png_path)


def plot(results, png_path):
    if not results.get("models"):
        return  # the plot is the compact family's; nothing of it was measured
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colors = {"ear": "tab:blue", "seed": "tab:red"}
    names = {"ear": "Ear (C)", "seed": "compact-python"}
    clips, sizes = results.get("clips"), results.get("index_sizes")
    if clips:
        ax = axes[0][0]
        for kind in ("ear", "seed"):
            xs = sorted(clips[kind], key=float)
            ax.plot([float(x) for x in xs],
                    [clip_stat(clips[kind][x], 50) for x in xs],
                    "o-", color=colors[kind], label=names[kind] + " p50")
            ax.plot([float(x) for x in xs],
                    [clip_stat(clips[kind][x], 99) for x in xs],
                    "x--", color=colors[kind], alpha=0.6, label=names[kind] + " p99")
        ax.set(xlabel="clip length (s)", ylabel="latency (ms)", yscale="log",
               title="Search latency vs clip length (c=1)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    if sizes:
        for kind in ("ear", "seed"):
            xs = sorted(sizes[kind], key=int)
            n = [int(x) for x in xs]
            axes[0][1].plot(n, [sizes[kind][x]["p50_us"] / 1e3 for x in xs], "o-",
                            color=colors[kind], label=names[kind] + " p50")
            axes[1][1].plot(n, [sizes[kind][x]["after_rss"] for x in xs], "o-",
                            color=colors[kind], label=names[kind] + " RSS after searches")
            axes[1][1].plot(n, [sizes[kind][x]["idle_pss"] for x in xs], "x--",
                            color=colors[kind], alpha=0.6, label=names[kind] + " PSS idle")
        axes[0][1].set(xscale="log", yscale="log", xlabel="index items", ylabel="latency (ms)",
                       title="Search latency vs index size (5 s clip, c=1)")
        axes[1][1].set(xscale="log", yscale="log", xlabel="index items", ylabel="MiB",
                       title="Memory vs index size")
        for ax in (axes[0][1], axes[1][1]):
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
    ax = axes[1][0]
    labels, ear_mem, seed_mem, ear_peak, seed_peak = [], [], [], [], []
    for name, rows in results["models"].items():
        s = summarise_model(rows)
        labels.append(name)
        ear_mem.append(s["ear"]["idle_rss"] or 0)
        seed_mem.append(s["seed"]["idle_rss"] or 0)
        ear_peak.append(s["ear"]["peak_rss"] or 0)
        seed_peak.append(s["seed"]["peak_rss"] or 0)
    x = np.arange(len(labels))
    ax.bar(x - 0.3, ear_mem, 0.2, color=colors["ear"], label="Ear idle RSS")
    ax.bar(x - 0.1, ear_peak, 0.2, color=colors["ear"], alpha=0.5, label="Ear peak RSS")
    ax.bar(x + 0.1, seed_mem, 0.2, color=colors["seed"], label="Python idle RSS")
    ax.bar(x + 0.3, seed_peak, 0.2, color=colors["seed"], alpha=0.5, label="Python peak RSS")
    ax.set_xticks(x, labels)
    ax.set(ylabel="MiB", title="Memory per model (1,000-item index)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("The compact family: ear serve vs compact-python (medians, %s)"
                 % results["meta"]["date"])
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


def build_type(build_dir):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    return line.split("=", 1)[1].strip() or "default"
    except OSError:
        pass
    return "unknown"


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ear", default=os.path.join(ROOT, "build", "ear"))
    ap.add_argument("--compact-dir", default=os.path.join(ROOT, "..", "shared", "peers",
                                                          "compact-python"),
                    help="the compact family's Python service (the compact rows' peer)")
    ap.add_argument("--original-dir", default=os.path.join(ROOT, "..", "shared", "peers",
                                                           "seed-python"),
                    help="the original service (the original model's peer)")
    ap.add_argument("--original-rounds", type=int,
                    default=int(os.environ.get("ORIGINAL_ROUNDS", 3)))
    ap.add_argument("--original-requests", type=int,
                    default=int(os.environ.get("ORIGINAL_REQUESTS", 8)),
                    help="answers per query kind per start, against the original")
    ap.add_argument("--no-original-deployed", dest="original_deployed", action="store_false",
                    default=os.environ.get("ORIGINAL_DEPLOYED", "1") != "0",
                    help="skip the one start of the original without thread variables")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
    ap.add_argument("--sweep-rounds", type=int, default=int(os.environ.get("SWEEP_ROUNDS", 2)))
    ap.add_argument("--requests", type=int, default=int(os.environ.get("REQUESTS", 20)),
                    help="answers per latency run at c=1 (twice as many at c=4)")
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--sizes", default=os.environ.get("SIZES", "1000,100000,1000000"))
    ap.add_argument("--clips", default=os.environ.get("CLIPS", "1,5,30,60"))
    ap.add_argument("--ear-before", default=os.environ.get("EAR_BEFORE"),
                    help="another ear binary to measure in the model rows (before a change)")
    ap.add_argument("--no-seed-two-workers", dest="seed_two_workers", action="store_false")
    ap.add_argument("--skip", default=os.environ.get("SKIP", ""),
                    help="comma-separated parts to skip: original (the original's model), "
                         "models, clips, sizes, encoder (the compact family's parts), compact "
                         "(all four)")
    ap.add_argument("--results", default=os.environ.get(
        "BENCH_RESULTS", os.path.join(ROOT, "bench", "results.json")))
    ap.add_argument("--markdown", default=os.environ.get(
        "BENCH_MARKDOWN", os.path.join(ROOT, "BENCHMARKS.md")))
    ap.add_argument("--plot", default=os.environ.get(
        "BENCH_PLOT", os.path.join(ROOT, "bench", "benchmarks.png")))
    ap.add_argument("--report-only", metavar="RESULTS")
    args = ap.parse_args()
    if args.report_only:
        with open(args.report_only) as f:
            write_report(json.load(f), args.markdown, args.plot)
        return 0
    args.ear = os.path.realpath(args.ear)
    if args.ear_before:
        args.ear_before = os.path.realpath(args.ear_before)
    args.build_dir = os.path.dirname(args.ear)
    args.seed_dir = args.compact_dir = os.path.realpath(args.compact_dir)
    args.original_dir = os.path.realpath(args.original_dir)
    skip = set(filter(None, args.skip.split(",")))
    if "compact" in skip:
        skip |= {"models", "clips", "sizes", "encoder"}
    for tool in ("ffmpeg",):
        if not shutil.which(tool):
            log("%s is missing (apt-get install %s)" % (tool, tool))
            return 1
    started = time.time()
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    args.work = work = tempfile.mkdtemp(prefix="ear-bench.")
    try:
        results = {"models": {}, "meta": {}}
        if "original" not in skip:
            log("== the original's model, against", args.original_dir)
            results["original"] = measure_original(args, work)
            with open(args.results + ".partial", "w") as f:  # kept if a later part fails
                json.dump(results, f, indent=1)
        compact_load_start = compact_load_end = None
        models = {}
        if not {"models", "clips", "sizes", "encoder"} <= skip:
            compact_load_start = " ".join(open("/proc/loadavg").read().split()[:3])
            models = measure_compact(args, work, skip, results)
            compact_load_end = " ".join(open("/proc/loadavg").read().split()[:3])
        results["meta"] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "host": platform.node(),
            "cores": os.cpu_count(),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                         if l.startswith("model name")), "?"),
            "build": "`%s` (%s build)" % (os.path.relpath(args.ear, ROOT), build_type(args.build_dir)),
            "items": args.items,
            "rounds": args.rounds,
            "requests": args.requests,
            "minutes": (time.time() - started) / 60,
            "load_start": load_start,
            "load_end": " ".join(open("/proc/loadavg").read().split()[:3]),
            "ear_weights": ear_default_weights(args.ear),
            "compact_load_start": compact_load_start,
            "compact_load_end": compact_load_end,
            "before": args.ear_before,
            "before_label": os.environ.get("EAR_BEFORE_LABEL"),
            "model_mb": {name: "%.0f" % (os.path.getsize(p) / 1e6) for name, p in models.items()},
        }
        with open(args.results, "w") as f:
            json.dump(results, f, indent=1)
        write_report(results, args.markdown, args.plot)
        if os.path.exists(args.results + ".partial"):
            os.unlink(args.results + ".partial")
        log("wrote %s, %s and %s in %.1f min" % (args.results, args.markdown, args.plot,
                                                   results["meta"]["minutes"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
