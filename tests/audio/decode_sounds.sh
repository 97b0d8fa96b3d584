#!/usr/bin/env bash
# Makes test sounds for the decode tests, the way browsers and phones make them,
# with Debian's ffmpeg and espeak-ng: decode_sounds.sh DIR NAME... writes
# DIR/NAME for each NAME (the names are listed in the case below). Made at test
# time so that no audio needs to be committed.
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
ff() { ffmpeg -nostdin -v error -y "$@"; }

# Sources, made once per folder: speech (22.05 kHz mono, 4 s), a stereo mix
# at 48 kHz whose channels differ (speech left, a sweep and pink noise right),
# and six different signals as 5.1.
sources() {
  [[ -f $dir/src-speech.wav && -f $dir/src-stereo.wav && -f $dir/src-5.1.wav ]] && return
  local mono=aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=mono
  espeak-ng -w "$dir/src-espeak.wav" \
    "Ear turns a sound into the pictures that go with it. Seven cows graze by the river."
  ff -i "$dir/src-espeak.wav" -af apad -t 4 -c:a pcm_s16le "$dir/src-speech.wav"
  ff -i "$dir/src-speech.wav" \
     -f lavfi -i "aevalsrc=0.4*sin(2*PI*(150+300*t)*t):s=48000:d=4" \
     -f lavfi -i "anoisesrc=c=pink:r=48000:a=0.1:seed=7:d=4" \
     -filter_complex "[0:a]aresample=48000,$mono[s];
                      [1:a][2:a]amix=inputs=2:normalize=0,$mono[r]; [s][r]amerge=inputs=2" \
     -c:a pcm_f32le "$dir/src-stereo.wav"
  ff -i "$dir/src-speech.wav" \
     -f lavfi -i "aevalsrc=0.3*sin(2*PI*300*t):s=48000:d=4" \
     -f lavfi -i "aevalsrc=0.3*sin(2*PI*(100+200*t)*t):s=48000:d=4" \
     -f lavfi -i "anoisesrc=c=pink:r=48000:a=0.2:seed=3:d=4" \
     -f lavfi -i "aevalsrc=0.3*sin(2*PI*70*t):s=48000:d=4" \
     -f lavfi -i "anoisesrc=c=brown:r=48000:a=0.2:seed=5:d=4" \
     -filter_complex "[0:a]aresample=48000,$mono[a]; [1:a]$mono[b]; [2:a]$mono[c];
                      [3:a]$mono[d]; [4:a]$mono[e]; [5:a]$mono[f];
                      [a][b][c][d][e][f]amerge=inputs=6,aformat=channel_layouts=5.1" \
     -c:a pcm_f32le "$dir/src-5.1.wav"
}

sources
speech=$dir/src-speech.wav
stereo=$dir/src-stereo.wav
surround=$dir/src-5.1.wav
for name in "$@"; do
  out=$dir/$name
  case $name in
    # Chrome's and Firefox's MediaRecorder: Opus at 48 kHz, in WebM or Ogg.
    webm-opus.webm) ff -i "$stereo" -c:a libopus -b:a 64k "$out" ;;
    # Written as a stream, as MediaRecorder does: no cues, sizes left unknown.
    webm-opus-live.webm) ff -i "$stereo" -c:a libopus -b:a 64k -live 1 -f webm - >"$out" ;;
    ogg-opus.ogg) ff -i "$speech" -ar 48000 -c:a libopus -b:a 32k "$out" ;;
    ogg-opus-5.1.opus) ff -i "$surround" -c:a libopus -b:a 192k "$out" ;;
    webm-vorbis.webm) ff -i "$stereo" -c:a libvorbis -q:a 4 "$out" ;;
    ogg-vorbis.ogg) ff -i "$stereo" -ar 44100 -c:a libvorbis -q:a 4 "$out" ;;
    ogg-flac.oga) ff -i "$stereo" -ar 44100 -sample_fmt s16 -c:a flac -f ogg "$out" ;;
    # A phone's recorder: AAC in M4A, moov at the end (so reading it seeks).
    m4a-aac.m4a) ff -i "$stereo" -ar 44100 -c:a aac -b:a 128k "$out" ;;
    m4a-aac-faststart.m4a)
      ff -i "$stereo" -ar 44100 -c:a aac -b:a 128k -movflags +faststart "$out" ;;
    # Safari's MediaRecorder: fragmented MP4.
    mp4-aac-fragmented.mp4)
      ff -i "$stereo" -c:a aac -b:a 128k \
         -movflags frag_keyframe+empty_moov+default_base_moof "$out" ;;
    mp3.mp3) ff -i "$stereo" -ar 44100 -c:a libmp3lame -b:a 128k "$out" ;;
    mp3-8k-mono.mp3) ff -i "$speech" -ar 8000 -c:a libmp3lame -b:a 24k "$out" ;;
    wav-u8-8k-mono.wav) ff -i "$speech" -ar 8000 -c:a pcm_u8 "$out" ;;
    wav-s16-16k-mono.wav) ff -i "$speech" -ar 16000 -c:a pcm_s16le "$out" ;;
    wav-s16-44k-stereo.wav) ff -i "$stereo" -ar 44100 -c:a pcm_s16le "$out" ;;
    wav-s24-48k-stereo.wav) ff -i "$stereo" -c:a pcm_s24le "$out" ;;
    wav-s32-96k-stereo.wav) ff -i "$stereo" -ar 96000 -c:a pcm_s32le "$out" ;;
    wav-f32-44k-stereo.wav) ff -i "$stereo" -ar 44100 -c:a pcm_f32le "$out" ;;
    wav-f64-22k-mono.wav) ff -i "$speech" -c:a pcm_f64le "$out" ;;
    wav-s16-5.1.wav) ff -i "$surround" -c:a pcm_s16le "$out" ;;
    flac-s24-48k-stereo.flac)
      ff -i "$stereo" -sample_fmt s32 -bits_per_raw_sample 24 -c:a flac "$out" ;;
    flac-8k-mono.flac) ff -i "$speech" -ar 8000 -c:a flac "$out" ;;
    # Long audio for the duration cap: 70 s (and exactly 5 s) of WebM/Opus.
    webm-opus-70s.webm)
      ff -f lavfi -i "sine=f=440:r=48000:d=70" -ac 2 -c:a libopus -b:a 32k "$out" ;;
    wav-s16-70s.wav) ff -f lavfi -i "sine=f=440:r=16000:d=70" -c:a pcm_s16le "$out" ;;
    # Inputs that must be refused.
    image.png) ff -f lavfi -i "color=c=red:s=32x32" -frames:v 1 "$out" ;;
    video-only.mp4) ff -f lavfi -i "testsrc=d=1:s=64x64:r=10" -c:v mpeg4 "$out" ;;
    video-only.webm) ff -f lavfi -i "testsrc=d=1:s=64x64:r=10" -c:v libvpx -b:v 100k "$out" ;;
    wav-adpcm.wav) ff -i "$speech" -c:a adpcm_ms "$out" ;;
    mkv-ac3.mkv) ff -i "$stereo" -c:a ac3 "$out" ;;
    mkv-alac.mkv) ff -i "$speech" -c:a alac "$out" ;;
    m4a-alac.m4a) ff -i "$speech" -c:a alac "$out" ;;
    mp4-video-aac.mp4)
      ff -f lavfi -i "testsrc=d=4:s=64x64:r=10" -i "$stereo" -c:v mpeg4 -c:a aac -ar 44100 \
         -shortest "$out" ;;
    *) echo "decode_sounds.sh: no recipe for '$name'" >&2; exit 2 ;;
  esac
done
