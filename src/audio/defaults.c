#include "audio/audio.h"

void ear_audio_decode_options_default(ear_audio_decode_options *o)
{
    o->sample_rate = 16000;
    o->max_seconds = 60.0;
    o->ffmpeg_cli = 0;
}

void ear_audio_mel_config_default(ear_audio_mel_config *c)
{
    c->sample_rate = 16000;
    c->n_fft = 512;
    c->win_length = 400;
    c->hop_length = 160;
    c->n_mels = 64;
    c->f_min = 0.0;
    c->f_max = 8000.0;
    c->log_offset = 1e-6;
    c->mean = -4.0;
    c->std = 4.0;
}
