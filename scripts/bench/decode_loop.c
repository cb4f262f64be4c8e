// Reference for `configspec-edge bench decode`: the same greedy single-token loop written directly
// against llama.cpp's C API, so the managed layer's overhead per token can be measured.
// Build: cc -O2 decode_loop.c -I<llama.cpp>/include -I<llama.cpp>/ggml/include -L<libdir> -l:libllama.v0.5.0.so -Wl,-rpath,<libdir>
// Run:   ./decode_loop LIBDIR MODEL TOKENS THREADS
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "llama.h"
#include "ggml-backend.h"

static void quiet(enum ggml_log_level level, const char *text, void *data) { (void)level; (void)text; (void)data; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int argmax(const float *row, int n) {
    int best = 0;
    float value = row[0];
    for (int i = 1; i < n; i++) if (row[i] > value) { value = row[i]; best = i; }
    return best;
}

static int decode_one(struct llama_context *ctx, llama_token token, llama_pos pos) {
    llama_seq_id seq = 0;
    llama_seq_id *seqs = &seq;
    int32_t nseq = 1;
    int8_t logits = 1;
    struct llama_batch batch = { 1, &token, NULL, &pos, &nseq, &seqs, &logits };
    return llama_decode(ctx, batch);
}

static double loop(struct llama_context *ctx, llama_memory_t mem, int n_vocab, llama_token bos, int count) {
    llama_memory_clear(mem, false);
    decode_one(ctx, bos, 0);
    int pos = 1;
    double start = now();
    for (int i = 0; i < count; i++) {
        llama_token next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        if (pos >= 500) { llama_memory_clear(mem, false); pos = 0; }
        if (decode_one(ctx, next, pos++) != 0) { fprintf(stderr, "decode failed\n"); exit(1); }
    }
    return now() - start;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s LIBDIR MODEL TOKENS THREADS\n", argv[0]); return 2; }
    int count = atoi(argv[3]), threads = atoi(argv[4]);
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[2]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = threads; cp.n_threads_batch = threads; cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    llama_memory_t mem = llama_get_memory(ctx);
    loop(ctx, mem, n_vocab, llama_vocab_bos(vocab), 64);
    double seconds = loop(ctx, mem, n_vocab, llama_vocab_bos(vocab), count);
    printf("c-api        tokens=%d seconds=%.4f tokens_per_s=%.1f us_per_token=%.2f\n", count, seconds, count / seconds, seconds * 1e6 / count);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
