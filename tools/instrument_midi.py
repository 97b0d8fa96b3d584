#!/usr/bin/env python3
"""The instrument demo's music, as Standard MIDI Files written byte by byte (no third-party module,
no PyTorch), and the cutting of fluidsynth's rendering back into clips.

    tools/instrument_midi.py midi OUTDIR [--small] [--seed N]
        OUTDIR/all.mid   every clip of every instrument, one after the other, 2.5 s apart
        OUTDIR/all.tsv   <instrument><TAB><clip number><TAB><start s><TAB><end s> (last note's end)
    tools/instrument_midi.py split RAW RATE TSV OUTDIR PREFIX
        RAW is fluidsynth's rendering of all.mid (-T raw -O s16 -E little, stereo, RATE Hz);
        each clip becomes OUTDIR/<instrument>/PREFIX-<clip number>.wav, mono 16-bit, from its
        start to its end plus a release tail of at most TAIL seconds (silence trimmed).
        A silent clip (a soundfont without the program) is an error.

An instrument's clips (24, or 3 with --small) are single notes over its range (several
velocities and lengths), scales (major, minor, chromatic, up or down, at several tempos) and
phrases (a random walk with rhythm; chords and arpeggios for piano, guitars and harp);
percussion uses the General MIDI drum kit on channel 10: beats and fills for the drum kit,
rhythms on bongos and congas for the hand drum, hits and ride patterns for the cymbal, shakes
for the maracas. Everything comes from a seeded random.Random per instrument, so the same
command writes the same files on every machine.
"""
import random
import struct
import sys
import wave
from array import array

TICKS = 480              # per quarter note; the tempo is fixed at 120 bpm, so 960 ticks = 1 s
GAP = 2.5                # seconds between clips (room for the release and the reverb)
TAIL = 1.2               # seconds kept after a clip's last note ends

# name: (GM programs, lowest, highest, kind). Programs are 0-based; "drums" use channel 10.
INSTRUMENTS = {
    "piano":           ([0, 1], 33, 96, "chords"),
    "xylophone":       ([13], 65, 96, "melody"),
    "guitar":          ([24, 25], 40, 76, "chords"),
    "electric_guitar": ([26, 27, 29, 30], 40, 79, "chords"),
    "bass_guitar":     ([33, 34], 28, 55, "melody"),
    "violin":          ([40], 55, 93, "melody"),
    "cello":           ([42], 36, 69, "melody"),
    "harp":            ([46], 36, 91, "chords"),
    "trumpet":         ([56], 54, 82, "melody"),
    "trombone":        ([57], 40, 72, "melody"),
    "french_horn":     ([60], 41, 77, "melody"),
    "saxophone":       ([65, 66], 49, 80, "melody"),
    "oboe":            ([68], 58, 89, "melody"),
    "bassoon":         ([70], 34, 67, "melody"),
    "flute":           ([73], 60, 96, "melody"),
    "drum_kit":        ([], 0, 0, "kit"),
    "hand_drum":       ([], 60, 64, "hand"),
    "cymbal":          ([], 0, 0, "cymbal"),
    "maracas":         ([], 70, 70, "shaker"),
}
SMALL = ["violin", "cello", "drum_kit"]


def varlen(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(events):
    """events: [(time s, bytes)] -> a format-0 Standard MIDI File at 120 bpm."""
    track = bytearray(b"\x00\xff\x51\x03\x07\xa1\x20")      # tempo 500000 us per quarter
    now = 0
    for t, data in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        tick = int(round(t * 2 * TICKS))
        track += varlen(tick - now) + data
        now = tick
    track += varlen(int(GAP * 2 * TICKS)) + b"\xff\x2f\x00"   # silence after the last clip
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS) +
            b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


class Clip:
    def __init__(self, channel):
        self.channel = channel
        self.notes = []          # (start s, length s, pitch, velocity)

    def note(self, start, length, pitch, velocity):
        self.notes.append((start, max(0.05, length), int(pitch), max(1, min(127, int(velocity)))))

    def end(self):
        return max(s + d for s, d, _, _ in self.notes)


SCALES = {"major": [0, 2, 4, 5, 7, 9, 11, 12], "minor": [0, 2, 3, 5, 7, 8, 10, 12],
          "chromatic": list(range(9))}


def melodic(rng, low, high, kind, index, count):
    """Clip `index` of `count` for a pitched instrument."""
    clip = Clip(0)
    span = high - low
    singles = max(1, count // 3)
    scales = max(1, count // 4)
    if index < singles:          # single notes spread over the range
        pitch = low + round(span * (index + rng.random()) / singles)
        clip.note(0, rng.choice([0.3, 0.6, 1.0, 1.6, 2.4]), min(high, pitch),
                  rng.choice([45, 70, 95, 120]))
        return clip
    if index < singles + scales:
        steps = SCALES[rng.choice(list(SCALES))]
        start = rng.randint(low, max(low, high - 12))
        beat = 60.0 / rng.choice([90, 120, 160, 200])
        if rng.random() < 0.4:
            steps = steps[::-1]
        velocity = rng.choice([55, 80, 105])
        for i, s in enumerate(steps):
            clip.note(i * beat / 2, beat / 2 * rng.choice([0.6, 0.95]), start + s,
                      velocity + rng.randint(-10, 10))
        return clip
    beat = 60.0 / rng.choice([80, 100, 120, 140])
    t = 0.0
    pitch = rng.randint(low + span // 4, high - span // 4)
    while t < 3.0:
        length = beat * rng.choice([0.5, 0.5, 1, 1, 1.5, 2])
        velocity = rng.randint(50, 115)
        if kind == "chords" and rng.random() < 0.5:
            chord = [0, 4, 7] if rng.random() < 0.6 else [0, 3, 7]
            chord = [c for c in chord + [12] if pitch + c <= high]
            arpeggio = rng.random() < 0.5
            for j, c in enumerate(chord):
                clip.note(t + (j * beat / 4 if arpeggio else 0), length * 0.95, pitch + c, velocity)
        else:
            clip.note(t, length * rng.choice([0.5, 0.9, 1.0]), pitch, velocity)
        t += length
        pitch = min(high, max(low, pitch + rng.choice([-5, -3, -2, -1, 1, 2, 3, 4, 7])))
    return clip


def percussion(rng, kind, index):
    clip = Clip(9)
    tempo = rng.choice([80, 96, 110, 124, 140, 160])
    step = 60.0 / tempo / 4          # a sixteenth
    if kind == "kit":
        if index % 6 == 0:           # single hits of the kit's parts
            for i, n in enumerate(rng.sample([35, 36, 38, 40, 42, 46, 45, 48, 50, 49, 51], 4)):
                clip.note(i * 0.6, 0.3, n, rng.randint(60, 120))
            return clip
        kick = rng.choice([36, 35])
        snare = rng.choice([38, 40])
        hat = rng.choice([42, 42, 44, 46, 51])
        for s in range(32 if tempo > 110 else 24):
            t = s * step
            if s % 2 == 0 or rng.random() < 0.2:
                clip.note(t, step, hat, rng.randint(50, 90))
            if s % 8 == 0 or (s % 8 == 6 and rng.random() < 0.4):
                clip.note(t, step, kick, rng.randint(90, 120))
            if s % 8 == 4:
                clip.note(t, step, snare, rng.randint(85, 120))
        if rng.random() < 0.5:       # a fill and a crash
            base = (32 if tempo > 110 else 24) * step
            for j, n in enumerate([50, 48, 47, 45, 43, 41][: rng.randint(3, 6)]):
                clip.note(base + j * step, step, n, rng.randint(80, 120))
            clip.note(base + 6 * step, 0.5, 49, 110)
        return clip
    if kind == "hand":
        for s in range(24):
            if rng.random() < 0.7:
                clip.note(s * step * 1.5, step, rng.randint(60, 64), rng.randint(50, 120))
        return clip
    if kind == "cymbal":
        if index % 3 != 2:
            for i in range(rng.randint(1, 3)):
                clip.note(i * 1.2, 0.8, rng.choice([49, 57, 52, 55, 51, 59, 53]), rng.randint(60, 125))
        else:
            ride = rng.choice([51, 59, 53])
            for s in range(16):
                if s % 4 != 1:
                    clip.note(s * step * 2, step, ride, rng.randint(60, 110))
        return clip
    # shaker
    pattern = rng.choice([[1, 1], [1, 0, 1, 1], [1, 1, 1, 1], [1, 0]])
    for s in range(32):
        if pattern[s % len(pattern)]:
            clip.note(s * step, step, 70, rng.randint(40, 120) if s % 4 else 120)
    return clip


def write_midi(out, small, seed):
    import os
    os.makedirs(out, exist_ok=True)
    names = SMALL if small else list(INSTRUMENTS)
    count = 3 if small else 24
    events, rows, t0 = [], [], 0.0
    for name in names:
        programs, low, high, kind = INSTRUMENTS[name]
        rng = random.Random("%d/%s" % (seed, name))
        for i in range(count):
            if kind in ("melody", "chords"):
                clip = melodic(rng, low, high, kind, i, count)
                events.append((t0, bytes([0xC0, programs[i % len(programs)]])))
            else:
                clip = percussion(rng, kind, i)
            for start, length, pitch, velocity in clip.notes:
                events.append((t0 + start, bytes([0x90 | clip.channel, pitch, velocity])))
                events.append((t0 + start + length, bytes([0x80 | clip.channel, pitch, 0])))
            rows.append("%s\t%02d\t%.4f\t%.4f\n" % (name, i, t0, t0 + clip.end()))
            t0 += clip.end() + GAP
    with open(os.path.join(out, "all.mid"), "wb") as f:
        f.write(smf(events))
    with open(os.path.join(out, "all.tsv"), "w") as f:
        f.writelines(rows)


def split(raw_path, rate, tsv, out, prefix):
    import os
    with open(raw_path, "rb") as f:
        stereo = array("h")
        stereo.frombytes(f.read())
    if sys.byteorder == "big":
        stereo.byteswap()
    frames = len(stereo) // 2
    with open(tsv) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for name, index, start, end in rows:
        a = int(float(start) * rate)
        b = min(frames, int((float(end) + TAIL) * rate))
        left, right = stereo[2 * a:2 * b:2], stereo[2 * a + 1:2 * b:2]
        mono = array("h", ((x + y) // 2 for x, y in zip(left, right)))
        # Trim the silent tail (below -60 dB), keeping at least the notes.
        last = len(mono)
        keep = int((float(end) - float(start)) * rate)
        while last > keep and abs(mono[last - 1]) < 33:
            last -= 1
        mono = mono[:last]
        peak = max((abs(v) for v in mono), default=0)
        if len(mono) < rate // 10 or peak < 100:
            raise SystemExit("split: clip %s %s is silent or shorter than 0.1 s in %s"
                             % (name, index, raw_path))
        if sys.byteorder == "big":
            mono.byteswap()
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with wave.open(os.path.join(out, name, "%s-%s.wav" % (prefix, index)), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(mono.tobytes())


def main(argv):
    if len(argv) >= 2 and argv[0] == "midi":
        small = "--small" in argv
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 1
        write_midi(argv[1], small, seed)
    elif len(argv) == 6 and argv[0] == "split":
        split(argv[1], int(argv[2]), argv[3], argv[4], argv[5])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
