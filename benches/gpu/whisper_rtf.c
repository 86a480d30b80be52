// Real-time factor of whisper.cpp on one WAV, the way latlab's whisper backend calls it
// (greedy, language "en", no timestamps, one full 30 s window per inference).
// Built on the GPU machine against the whisper.cpp that whisper-rs-sys 0.15.0 vendors, so
// the figures are those of the library latlab links. Prints one TSV line per repetition:
// device, flash_attn, threads, rep, audio_ms, infer_ms, rtf, text.
// usage: whisper_rtf MODEL WAV gpu|cpu fa|nofa THREADS REPS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "whisper.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// A 16 kHz mono 16-bit PCM WAV (the smoke set's format); walks the chunks to "data".
static float *read_wav(const char *path, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return NULL; }
    unsigned char h[12];
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
        fprintf(stderr, "%s: not a RIFF/WAVE file\n", path); fclose(f); return NULL;
    }
    for (;;) {
        unsigned char c[8];
        if (fread(c, 1, 8, f) != 8) { fprintf(stderr, "%s: no data chunk\n", path); fclose(f); return NULL; }
        uint32_t len = c[4] | c[5] << 8 | c[6] << 16 | (uint32_t)c[7] << 24;
        if (memcmp(c, "data", 4)) { fseek(f, len + (len & 1), SEEK_CUR); continue; }
        int16_t *pcm = malloc(len);
        float *out = malloc(sizeof(float) * (len / 2));
        if (!pcm || !out || fread(pcm, 1, len, f) != len) { fprintf(stderr, "%s: short read\n", path); fclose(f); return NULL; }
        for (uint32_t i = 0; i < len / 2; i++) out[i] = pcm[i] / 32768.0f;
        free(pcm); fclose(f); *n = len / 2;
        return out;
    }
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s MODEL WAV gpu|cpu fa|nofa THREADS REPS\n", argv[0]); return 2; }
    int gpu = !strcmp(argv[3], "gpu"), fa = !strcmp(argv[4], "fa");
    int threads = atoi(argv[5]), reps = atoi(argv[6]);
    int n = 0;
    float *pcm = read_wav(argv[2], &n);
    if (!pcm) return 1;
    struct whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = gpu;
    cp.flash_attn = fa;
    double t0 = now_ms();
    struct whisper_context *ctx = whisper_init_from_file_with_params(argv[1], cp);
    if (!ctx) { fprintf(stderr, "could not load %s\n", argv[1]); return 1; }
    fprintf(stderr, "load_ms\t%.1f\n", now_ms() - t0);
    struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.n_threads = threads;
    p.language = "en";
    p.no_timestamps = 1;
    p.print_progress = p.print_realtime = p.print_timestamps = p.print_special = 0;
    double audio_ms = n / 16.0;
    for (int r = 0; r < reps; r++) {
        double s = now_ms();
        if (whisper_full(ctx, p, pcm, n) != 0) { fprintf(stderr, "whisper_full failed\n"); return 1; }
        double ms = now_ms() - s;
        char text[512] = "";
        for (int i = 0; i < whisper_full_n_segments(ctx); i++)
            strncat(text, whisper_full_get_segment_text(ctx, i), sizeof text - strlen(text) - 1);
        for (char *c = text; *c; c++) if (*c == '\t' || *c == '\n') *c = ' ';
        printf("%s\t%s\t%d\t%d\t%.0f\t%.1f\t%.4f\t%s\n", gpu ? "cuda" : "cpu", fa ? "fa" : "nofa",
               threads, r, audio_ms, ms, ms / audio_ms, text);
        fflush(stdout);
    }
    whisper_print_timings(ctx);
    whisper_free(ctx);
    free(pcm);
    return 0;
}
