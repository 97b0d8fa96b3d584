/* In-process audio decoding: FFmpeg's libraries read the upload straight from
 * memory (no subprocess, no temporary file), only whitelisted containers and
 * codecs get past the door, and libswresample turns whatever arrives into mono
 * float32 at the requested rate.
 *
 * Policy for damaged input: demuxing stops at the first read error (a file cut
 * short mid-packet, a WAV header promising more data than the file holds) and
 * whatever decoded before it is kept; packets the decoder rejects are skipped,
 * as the ffmpeg command does. Only when nothing at all decodes is it an error
 * ("no audio decoded"), with FFmpeg's reason attached. Callers that need a
 * minimum length (the service refuses clips under 0.1 s) check clip->count. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "audio/audio.h"

/* Output rates outside this range are almost certainly a caller's mistake. */
enum { EAR_AUDIO_RATE_MIN = 1000, EAR_AUDIO_RATE_MAX = 768000 };
/* Input rates are bounded too: the resampler's filter grows with the ratio of
 * input to output rate, so a header claiming gigahertz must not reach it. */
enum { EAR_AUDIO_INPUT_RATE_MIN = 1000, EAR_AUDIO_INPUT_RATE_MAX = 768000 };
/* libswresample's own limit (SWR_CH_MAX). */
enum { EAR_AUDIO_CHANNELS_MAX = 64 };
enum { EAR_AUDIO_IO_BUFFER = 32 * 1024 };
/* Room for FFmpeg's error string and its last log line together. */
enum {
    EAR_AUDIO_LOG_SIZE = 256,
    EAR_AUDIO_REASON_SIZE = AV_ERROR_MAX_STRING_SIZE + EAR_AUDIO_LOG_SIZE + 8
};

/* One accepted container: FFmpeg's demuxer name, the name the clip reports,
 * and the codecs accepted inside it (AV_CODEC_ID_NONE ends the list). */
typedef struct container_rule {
    const char *demuxer;
    const char *format;
    enum AVCodecID codecs[8];
} container_rule;

static const container_rule container_rules[] = {
    {"matroska,webm", "webm", {AV_CODEC_ID_OPUS, AV_CODEC_ID_VORBIS}},
    {"ogg", "ogg", {AV_CODEC_ID_OPUS, AV_CODEC_ID_VORBIS, AV_CODEC_ID_FLAC}},
    {"mov,mp4,m4a,3gp,3g2,mj2", "mp4", {AV_CODEC_ID_AAC}},
    {"mp3", "mp3", {AV_CODEC_ID_MP3}},
    {"wav", "wav",
     {AV_CODEC_ID_PCM_U8, AV_CODEC_ID_PCM_S16LE, AV_CODEC_ID_PCM_S24LE, AV_CODEC_ID_PCM_S32LE,
      AV_CODEC_ID_PCM_F32LE, AV_CODEC_ID_PCM_F64LE}},
    {"flac", "flac", {AV_CODEC_ID_FLAC}},
};

/* Handed to FFmpeg as well, so that its own checks refuse anything else even
 * if a code path here were to slip. */
static const char format_whitelist[] = "matroska,webm,ogg,mov,mp4,m4a,3gp,3g2,mj2,mp3,wav,flac";
static const char codec_whitelist[] = "opus,libopus,vorbis,libvorbis,flac,aac,aac_fixed,mp3float,"
                                      "mp3,pcm_u8,pcm_s16le,pcm_s24le,pcm_s32le,pcm_f32le,"
                                      "pcm_f64le";
static const char accepted_formats[] = "WebM/Matroska, Ogg, MP4/M4A, MP3, WAV, FLAC";

/* FFmpeg's last error-level log line on this thread: the service's stderr stays
 * clean, and the reason still reaches the error message. */
static _Thread_local char ffmpeg_last_error[EAR_AUDIO_LOG_SIZE];
static pthread_once_t ffmpeg_log_once = PTHREAD_ONCE_INIT;

static void capture_ffmpeg_log(void *context, int level, const char *format, va_list args)
{
    if (level > AV_LOG_ERROR)
        return;
    char line[EAR_AUDIO_LOG_SIZE];
    vsnprintf(line, sizeof line, format, args);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = 0;
    /* A line's bare newline, logged on its own, must not erase the line. */
    if (n > 0)
        memcpy(ffmpeg_last_error, line, n + 1);
}

static void setup_ffmpeg_log(void)
{
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(capture_ffmpeg_log);
}

/* FFmpeg's reason for code, with its last log line when there is one (often
 * more specific: "moov atom not found" behind "Invalid data found"). */
static const char *ffmpeg_reason(int code, char *buffer, size_t size)
{
    char generic[AV_ERROR_MAX_STRING_SIZE] = "";
    if (code < 0 && av_strerror(code, generic, sizeof generic) != 0)
        generic[0] = 0;
    if (generic[0] && ffmpeg_last_error[0])
        snprintf(buffer, size, "%s (%s)", generic, ffmpeg_last_error);
    else if (generic[0] || ffmpeg_last_error[0])
        snprintf(buffer, size, "%s", generic[0] ? generic : ffmpeg_last_error);
    else
        snprintf(buffer, size, "unknown reason");
    return buffer;
}

/* The upload as FFmpeg's I/O sees it. */
typedef struct memory_reader {
    const uint8_t *data;
    size_t size;
    size_t position;
} memory_reader;

static int memory_read(void *opaque, uint8_t *buffer, int buffer_size)
{
    memory_reader *r = opaque;
    if (buffer_size <= 0)
        return AVERROR(EINVAL);
    if (r->position >= r->size)
        return AVERROR_EOF;
    size_t n = r->size - r->position;
    if (n > (size_t)buffer_size)
        n = (size_t)buffer_size;
    memcpy(buffer, r->data + r->position, n);
    r->position += n;
    return (int)n;
}

static int64_t memory_seek(void *opaque, int64_t offset, int whence)
{
    memory_reader *r = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)r->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)r->position; break;
    case SEEK_END: base = (int64_t)r->size; break;
    default: return AVERROR(EINVAL);
    }
    if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0 ||
        (uint64_t)(base + offset) > r->size)
        return AVERROR(EINVAL);
    r->position = (size_t)(base + offset);
    return (int64_t)r->position;
}

/* Demuxers that would open other files or URLs (playlists, references in MP4)
 * get nothing: an upload is one file. */
static int refuse_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **options)
{
    return AVERROR(EPERM);
}

/* Reads an EBML variable-length integer (keep_marker: element IDs keep their
 * length bits). Returns its length in bytes, 0 when malformed. */
static size_t ebml_read_vint(const uint8_t *p, size_t size, int keep_marker, uint64_t *value)
{
    if (size == 0 || p[0] == 0)
        return 0;
    size_t length = 1;
    while (!(p[0] & (0x80 >> (length - 1))))
        length++;
    if (length > size || length > 8)
        return 0;
    uint64_t v = keep_marker ? p[0] : p[0] & (0xffu >> length);
    for (size_t i = 1; i < length; i++)
        v = (v << 8) | p[i];
    *value = v;
    return length;
}

/* "webm" when the EBML header's DocType says so, else "matroska": FFmpeg reads
 * both with one demuxer and does not say which it saw. */
static const char *matroska_flavour(const uint8_t *data, size_t size)
{
    uint64_t id, length;
    size_t n = ebml_read_vint(data, size, 1, &id);
    if (n == 0 || id != 0x1A45DFA3)
        return "matroska";
    size_t position = n;
    n = ebml_read_vint(data + position, size - position, 0, &length);
    if (n == 0)
        return "matroska";
    position += n;
    size_t end = length < size - position ? position + (size_t)length : size;
    while (position < end) {
        n = ebml_read_vint(data + position, end - position, 1, &id);
        if (n == 0)
            break;
        position += n;
        n = ebml_read_vint(data + position, end - position, 0, &length);
        if (n == 0 || length > end - position - n)
            break;
        position += n;
        if (id == 0x4282)
            return length == 4 && memcmp(data + position, "webm", 4) == 0 ? "webm" : "matroska";
        position += (size_t)length;
    }
    return "matroska";
}

static const container_rule *find_container_rule(const char *demuxer)
{
    for (size_t i = 0; i < sizeof container_rules / sizeof container_rules[0]; i++)
        if (strcmp(container_rules[i].demuxer, demuxer) == 0)
            return &container_rules[i];
    return NULL;
}

static int rule_accepts_codec(const container_rule *rule, enum AVCodecID codec)
{
    for (size_t i = 0; i < sizeof rule->codecs / sizeof rule->codecs[0]; i++) {
        if (rule->codecs[i] == AV_CODEC_ID_NONE)
            break;
        if (rule->codecs[i] == codec)
            return 1;
    }
    return 0;
}

/* "opus, vorbis": the codecs rule accepts, for error messages. */
static void describe_codecs(const container_rule *rule, char *out, size_t size)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof rule->codecs / sizeof rule->codecs[0]; i++) {
        if (rule->codecs[i] == AV_CODEC_ID_NONE)
            break;
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                         avcodec_get_name(rule->codecs[i]));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* What the file holds, for "no audio stream" messages: "video h264, subtitle ass". */
static void describe_streams(const AVFormatContext *fmt, char *out, size_t size)
{
    size_t used = 0;
    out[0] = 0;
    for (unsigned i = 0; i < fmt->nb_streams && i < 8; i++) {
        const AVCodecParameters *par = fmt->streams[i]->codecpar;
        const char *type = av_get_media_type_string(par->codec_type);
        int n = snprintf(out + used, size - used, "%s%s %s", i ? ", " : "", type ? type : "data",
                         avcodec_get_name(par->codec_id));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (!out[0])
        snprintf(out, size, "no streams");
}

/* Everything one decode owns; released in one place. */
typedef struct decode_state {
    memory_reader reader;
    AVIOContext *io;
    AVFormatContext *fmt;
    AVCodecContext *decoder;
    AVPacket *packet;
    AVFrame *frame;
    SwrContext *resampler;
    int resampler_format, resampler_rate, resampler_channels;
    int out_rate;
    int ffmpeg_cli; /* ear_audio_decode_options.ffmpeg_cli */
    size_t limit;   /* samples kept at most; SIZE_MAX when uncapped */
    float *samples; /* the growing output */
    size_t count, capacity;
    int truncated;
    int decode_errors;
    int last_decode_error;
} decode_state;

/* Room for extra more samples: geometric growth as audio actually decodes
 * (never from a header's claims), and never past the cap. */
static int reserve_samples(decode_state *s, size_t extra, ear_error *err)
{
    if (extra > SIZE_MAX / sizeof(float) - s->count)
        return ear_error_set(err, "decoded audio too large");
    size_t need = s->count + extra;
    if (need <= s->capacity)
        return 0;
    size_t capacity = s->capacity ? s->capacity : (size_t)s->out_rate;
    while (capacity < need)
        capacity = capacity > SIZE_MAX / sizeof(float) / 2 ? need : capacity * 2;
    /* One sample past the cap tells that there was more. */
    if (s->limit < SIZE_MAX && capacity > s->limit + 1 && need <= s->limit + 1)
        capacity = s->limit + 1;
    float *grown = realloc(s->samples, capacity * sizeof(float));
    if (!grown)
        return ear_error_set(err, "out of memory for %zu samples", capacity);
    s->samples = grown;
    s->capacity = capacity;
    return 0;
}

/* Runs in samples (or the resampler's tail when in is NULL) through the
 * resampler into the output; stops the decode at the cap. Returns 1 when the
 * cap was passed, 0 to go on, -1 on failure. */
static int resample_into_output(decode_state *s, const uint8_t **in, int in_count, ear_error *err)
{
    for (;;) {
        int room = swr_get_out_samples(s->resampler, in ? in_count : 0);
        if (room < 0)
            return ear_error_set(err, "resampler failed");
        if (!in && room == 0)
            return 0;
        /* Output past the cap is never made: what is left of the input stays
         * buffered in the resampler, and is dropped with it. */
        if (s->limit < SIZE_MAX && (size_t)room > s->limit - s->count + 1)
            room = (int)(s->limit - s->count + 1);
        /* At least one sample of room, so that the output pointer is never
         * NULL; input that makes no output yet stays buffered in the resampler. */
        if (reserve_samples(s, room > 0 ? (size_t)room : 1, err) != 0)
            return -1;
        uint8_t *out = (uint8_t *)(s->samples + s->count);
        int made = swr_convert(s->resampler, &out, room, in, in_count);
        if (made < 0) {
            char why[AV_ERROR_MAX_STRING_SIZE];
            av_strerror(made, why, sizeof why);
            return ear_error_set(err, "resampling failed: %s", why);
        }
        if (s->ffmpeg_cli) {
            /* 16-bit samples in the first half of the room, widened in place from the end
             * (float i never overlaps a 16-bit sample not yet read): soundfile's / 32768. */
            const int16_t *pcm = (const int16_t *)out;
            float *f = (float *)out;
            for (int i = made - 1; i >= 0; i--)
                f[i] = (float)pcm[i] / 32768.0f;
        }
        s->count += (size_t)made;
        if (s->count > s->limit) {
            s->count = s->limit;
            s->truncated = 1;
            return 1;
        }
        /* Fed input is taken whole in one call; a flush repeats until dry. */
        if (in || made == 0)
            return 0;
    }
}

/* A resampler for frames shaped like frame: any format, rate and channel count
 * in; mono float at out_rate out, every channel weighted equally (FFmpeg's own
 * mono downmix weighs stereo by 0.707 each and drops LFE, which is not an
 * average). */
static int setup_resampler(decode_state *s, const AVFrame *frame, ear_error *err)
{
    int channels = frame->ch_layout.nb_channels;
    if (channels < 1 || channels > EAR_AUDIO_CHANNELS_MAX)
        return ear_error_set(err, "unsupported channel count %d (1 to %d)", channels,
                             EAR_AUDIO_CHANNELS_MAX);
    if (frame->sample_rate < EAR_AUDIO_INPUT_RATE_MIN ||
        frame->sample_rate > EAR_AUDIO_INPUT_RATE_MAX)
        return ear_error_set(err, "unsupported sample rate %d Hz (%d to %d)", frame->sample_rate,
                             EAR_AUDIO_INPUT_RATE_MIN, EAR_AUDIO_INPUT_RATE_MAX);
    /* The mix is uniform, so which speaker is which does not matter: a default
     * layout for the count also covers streams whose order is unspecified. */
    AVChannelLayout in_layout, out_layout;
    av_channel_layout_default(&in_layout, channels);
    av_channel_layout_default(&out_layout, 1);
    /* The ffmpeg command's conversion: the stream's own layout (FFmpeg's downmix weighs
     * speakers), 16-bit output, libswresample's defaults otherwise. */
    if (s->ffmpeg_cli && frame->ch_layout.order == AV_CHANNEL_ORDER_NATIVE) {
        av_channel_layout_uninit(&in_layout);
        if (av_channel_layout_copy(&in_layout, &frame->ch_layout) < 0)
            av_channel_layout_default(&in_layout, channels);
    }
    int rc = swr_alloc_set_opts2(&s->resampler, &out_layout,
                                 s->ffmpeg_cli ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLT,
                                 s->out_rate, &in_layout, (enum AVSampleFormat)frame->format,
                                 frame->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    av_channel_layout_uninit(&out_layout);
    if (rc < 0)
        goto fail;
    if (!s->ffmpeg_cli) {
        double matrix[EAR_AUDIO_CHANNELS_MAX];
        for (int c = 0; c < channels; c++)
            matrix[c] = 1.0 / channels;
        if ((rc = swr_set_matrix(s->resampler, matrix, channels)) < 0)
            goto fail;
        /* Float throughout: for 8- and 16-bit input libswresample would otherwise
         * mix and filter in 16-bit integers, rounding the average. */
        if ((rc = av_opt_set_sample_fmt(s->resampler, "internal_sample_fmt", AV_SAMPLE_FMT_FLTP,
                                        0)) < 0)
            goto fail;
    }
    if ((rc = swr_init(s->resampler)) < 0)
        goto fail;
    s->resampler_format = frame->format;
    s->resampler_rate = frame->sample_rate;
    s->resampler_channels = channels;
    return 0;
fail:
    swr_free(&s->resampler);
    char why[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(rc, why, sizeof why);
    return ear_error_set(err, "cannot resample %d Hz %d-channel %s audio: %s", frame->sample_rate,
                         channels, av_get_sample_fmt_name(frame->format) ?
                         av_get_sample_fmt_name(frame->format) : "?", why);
}

/* Takes one decoded frame. Returns 1 at the cap, 0 to go on, -1 on failure. */
static int take_frame(decode_state *s, AVFrame *frame, ear_error *err)
{
    if (frame->nb_samples <= 0)
        return 0;
    /* A stream may change shape midway (chained Ogg, MP3 rate switches): the
     * old resampler's tail goes out first. */
    if (s->resampler &&
        (frame->format != s->resampler_format || frame->sample_rate != s->resampler_rate ||
         frame->ch_layout.nb_channels != s->resampler_channels)) {
        int rc = resample_into_output(s, NULL, 0, err);
        swr_free(&s->resampler);
        if (rc != 0)
            return rc;
    }
    if (!s->resampler && setup_resampler(s, frame, err) != 0)
        return -1;
    return resample_into_output(s, (const uint8_t **)frame->extended_data, frame->nb_samples, err);
}

/* Takes every frame the decoder has ready. Returns 1 at the cap, 0 when the
 * decoder wants more input (or rejected a packet), 2 when it is fully
 * drained, -1 on failure. */
static int drain_decoder(decode_state *s, ear_error *err)
{
    for (;;) {
        int rc = avcodec_receive_frame(s->decoder, s->frame);
        if (rc == AVERROR(EAGAIN))
            return 0;
        if (rc == AVERROR_EOF)
            return 2;
        if (rc < 0) {
            s->decode_errors++;
            s->last_decode_error = rc;
            return 0;
        }
        rc = take_frame(s, s->frame, err);
        av_frame_unref(s->frame);
        if (rc != 0)
            return rc;
    }
}

/* Feeds one packet (NULL: end of input) to the decoder and takes its frames.
 * A damaged packet is skipped, as the ffmpeg command does. */
static int decode_packet(decode_state *s, const AVPacket *packet, ear_error *err)
{
    /* A decoder that is full (EAGAIN) gets drained and the packet sent again,
     * once: one that refuses twice is treated as having rejected it. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int sent = avcodec_send_packet(s->decoder, packet);
        if (sent < 0 && sent != AVERROR(EAGAIN) && sent != AVERROR_EOF) {
            s->decode_errors++;
            s->last_decode_error = sent;
        }
        int rc = drain_decoder(s, err);
        if (rc != 0 || sent != AVERROR(EAGAIN))
            return rc;
    }
    s->decode_errors++;
    return 0;
}

static void release(decode_state *s)
{
    swr_free(&s->resampler);
    av_frame_free(&s->frame);
    av_packet_free(&s->packet);
    avcodec_free_context(&s->decoder);
    avformat_close_input(&s->fmt);
    if (s->io) {
        av_freep(&s->io->buffer);
        avio_context_free(&s->io);
    }
    free(s->samples);
    s->samples = NULL;
}

/* Opens the container and the decoder of its first acceptable audio stream;
 * fills clip->format and clip->codec. Returns the stream index or -1. */
static int open_audio_stream(decode_state *s, ear_audio_clip *clip, ear_error *err)
{
    char why[EAR_AUDIO_REASON_SIZE];
    uint8_t *buffer = av_malloc(EAR_AUDIO_IO_BUFFER);
    if (!buffer)
        return ear_error_set(err, "out of memory");
    s->io = avio_alloc_context(buffer, EAR_AUDIO_IO_BUFFER, 0, &s->reader, memory_read, NULL,
                               memory_seek);
    if (!s->io) {
        av_free(buffer);
        return ear_error_set(err, "out of memory");
    }

    /* The format comes from the bytes alone (no file name to hint). A weak
     * guess is refused: random bytes can look like a few MP3 frame headers. */
    const AVInputFormat *input_format = NULL;
    int score = av_probe_input_buffer2(s->io, &input_format, "", NULL, 0, 0);
    if (score < 0 || !input_format || score <= AVPROBE_SCORE_RETRY)
        return ear_error_set(err,
                             "unrecognised data (%zu bytes): not an audio file in a supported "
                             "format (%s)",
                             s->reader.size, accepted_formats);
    const container_rule *rule = find_container_rule(input_format->name);
    if (!rule)
        return ear_error_set(err, "unsupported format '%s' (%zu bytes): accepted are %s",
                             input_format->name, s->reader.size, accepted_formats);
    snprintf(clip->format, sizeof clip->format, "%s",
             strcmp(rule->format, "webm") == 0 ? matroska_flavour(s->reader.data, s->reader.size)
                                               : rule->format);

    s->fmt = avformat_alloc_context();
    if (!s->fmt)
        return ear_error_set(err, "out of memory");
    s->fmt->pb = s->io;
    s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    s->fmt->io_open = refuse_io_open;
    s->fmt->format_whitelist = av_strdup(format_whitelist);
    s->fmt->codec_whitelist = av_strdup(codec_whitelist);
    if (!s->fmt->format_whitelist || !s->fmt->codec_whitelist)
        return ear_error_set(err, "out of memory");
    int rc = avformat_open_input(&s->fmt, "", input_format, NULL);
    if (rc < 0) /* s->fmt is freed and NULL now; s->io is still ours */
        return ear_error_set(err, "cannot read this %s file: %s", clip->format,
                             ffmpeg_reason(rc, why, sizeof why));

    /* No avformat_find_stream_info: every accepted demuxer knows the codec from
     * its header, the decoder finds the rest in the first frames, and probing
     * would run decoders over streams that are never used. */
    int index = -1, first_audio = -1;
    for (unsigned i = 0; i < s->fmt->nb_streams && index < 0; i++) {
        const AVCodecParameters *par = s->fmt->streams[i]->codecpar;
        if (par->codec_type != AVMEDIA_TYPE_AUDIO)
            continue;
        if (first_audio < 0)
            first_audio = (int)i;
        if (rule_accepts_codec(rule, par->codec_id))
            index = (int)i;
    }
    if (first_audio < 0) {
        char streams[160];
        describe_streams(s->fmt, streams, sizeof streams);
        return ear_error_set(err, "no audio stream in this %s file (it holds: %s)", clip->format,
                             streams);
    }
    if (index < 0) {
        char accepted[160];
        describe_codecs(rule, accepted, sizeof accepted);
        return ear_error_set(err, "audio codec '%s' is not supported in %s (accepted: %s)",
                             avcodec_get_name(s->fmt->streams[first_audio]->codecpar->codec_id),
                             clip->format, accepted);
    }
    AVStream *stream = s->fmt->streams[index];
    snprintf(clip->codec, sizeof clip->codec, "%s", avcodec_get_name(stream->codecpar->codec_id));

    const AVCodec *codec = avcodec_find_decoder(stream->codecpar->codec_id);
    if (!codec)
        return ear_error_set(err, "no %s decoder in this FFmpeg build", clip->codec);
    s->decoder = avcodec_alloc_context3(codec);
    if (!s->decoder)
        return ear_error_set(err, "out of memory");
    if ((rc = avcodec_parameters_to_context(s->decoder, stream->codecpar)) < 0)
        return ear_error_set(err, "cannot set up the %s decoder: %s", clip->codec,
                             ffmpeg_reason(rc, why, sizeof why));
    s->decoder->pkt_timebase = stream->time_base;
    /* Workers decode in parallel already; the codec needs no threads of its own. */
    s->decoder->thread_count = 1;
    s->decoder->codec_whitelist = av_strdup(codec_whitelist);
    if (!s->decoder->codec_whitelist)
        return ear_error_set(err, "out of memory");
    if ((rc = avcodec_open2(s->decoder, codec, NULL)) < 0)
        return ear_error_set(err, "cannot open the %s decoder: %s", clip->codec,
                             ffmpeg_reason(rc, why, sizeof why));
    /* Only the chosen stream's packets are wanted; the demuxer may skip the rest. */
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        if ((int)i != index)
            s->fmt->streams[i]->discard = AVDISCARD_ALL;
    return index;
}

int ear_audio_decode(const uint8_t *data, size_t size, const ear_audio_decode_options *o,
                     ear_audio_clip *clip, ear_error *err)
{
    ear_audio_decode_options defaults;
    decode_state s;
    char why[EAR_AUDIO_REASON_SIZE];
    memset(&s, 0, sizeof s);
    memset(clip, 0, sizeof *clip);
    if (!o) {
        ear_audio_decode_options_default(&defaults);
        o = &defaults;
    }
    if (o->sample_rate < EAR_AUDIO_RATE_MIN || o->sample_rate > EAR_AUDIO_RATE_MAX)
        return ear_error_set(err, "output sample rate %d Hz is out of range (%d to %d)",
                             o->sample_rate, EAR_AUDIO_RATE_MIN, EAR_AUDIO_RATE_MAX);
    if (isnan(o->max_seconds))
        return ear_error_set(err, "max_seconds is not a number");
    if (size == 0)
        return ear_error_set(err, "empty input (0 bytes)");
    if (!data)
        return ear_error_set(err, "no data");
    /* Far past any upload; keeps every offset FFmpeg's int-sized reads see small. */
    if (size > INT_MAX)
        return ear_error_set(err, "input too large (%zu bytes, limit %d)", size, INT_MAX);

    pthread_once(&ffmpeg_log_once, setup_ffmpeg_log);
    ffmpeg_last_error[0] = 0;

    s.reader.data = data;
    s.reader.size = size;
    s.out_rate = o->sample_rate;
    s.ffmpeg_cli = o->ffmpeg_cli;
    s.limit = SIZE_MAX;
    if (o->max_seconds > 0) {
        /* The epsilon keeps 2.01 s * 16000 Hz (32159.99...) at 32160 samples. */
        double limit = floor(o->max_seconds * o->sample_rate + 1e-6);
        if (limit < (double)(SIZE_MAX / sizeof(float) / 2))
            s.limit = (size_t)limit;
    }

    int index = open_audio_stream(&s, clip, err);
    if (index < 0)
        goto fail;
    s.packet = av_packet_alloc();
    s.frame = av_frame_alloc();
    if (!s.packet || !s.frame) {
        ear_error_set(err, "out of memory");
        goto fail;
    }

    int rc = 0, read_error = 0;
    while (rc == 0) {
        int got = av_read_frame(s.fmt, s.packet);
        if (got < 0) {
            /* End of file, or the file is cut short or damaged here: keep what
             * decoded so far and drain the decoder. */
            if (got != AVERROR_EOF)
                read_error = got;
            rc = decode_packet(&s, NULL, err);
            break;
        }
        if (s.packet->stream_index == index)
            rc = decode_packet(&s, s.packet, err);
        av_packet_unref(s.packet);
    }
    if (rc < 0)
        goto fail;
    if (rc != 1 && s.resampler && resample_into_output(&s, NULL, 0, err) < 0)
        goto fail;

    if (s.count == 0) {
        if (s.decode_errors > 0)
            ear_error_set(err, "no audio decoded from this %s/%s file: %d packets rejected, the "
                          "last with: %s", clip->format, clip->codec, s.decode_errors,
                          ffmpeg_reason(s.last_decode_error, why, sizeof why));
        else if (read_error)
            ear_error_set(err, "no audio decoded from this %s/%s file: %s", clip->format,
                          clip->codec, ffmpeg_reason(read_error, why, sizeof why));
        else
            ear_error_set(err, "no audio decoded from this %s/%s file: it holds no samples",
                          clip->format, clip->codec);
        goto fail;
    }

    /* Give back the growth slack: clips live on in request queues. */
    float *fitted = realloc(s.samples, s.count * sizeof(float));
    clip->samples = fitted ? fitted : s.samples;
    s.samples = NULL;
    clip->count = s.count;
    clip->sample_rate = o->sample_rate;
    clip->truncated = s.truncated;
    release(&s);
    return 0;

fail:
    release(&s);
    memset(clip, 0, sizeof *clip);
    return -1;
}

void ear_audio_clip_free(ear_audio_clip *clip)
{
    if (!clip)
        return;
    free(clip->samples);
    clip->samples = NULL;
    clip->count = 0;
}
