// Whole-process memory of a cache mode at a context length, for `npm run bench -- --memory`.
//
//   xquant-memory MODEL MODE N_CTX THREADS
//
// Reads the weights into the process (no mmap, so they count in its RSS), creates a
// context of N_CTX cells with ubatches of 512, fills every cell, then decodes one token
// that attends to all of them, and prints the peak RSS (VmHWM), the weights, the cache
// and the compute buffers as one JSON object.
//
// Filling N_CTX cells with one long sequence costs O(N_CTX²) attention (and, for an
// X-cache, a rebuild of every older cell per ubatch): hours at 32k on two cores. So the
// cells are filled as N_CTX/512 sequences of 511 tokens, which attention (flash attention
// for KV, XQ_ATTN for X) skips across. The decoded token (the 512th of each) is stored in
// every sequence, but llama.cpp's mask (and XQ_ATTN's visibility) lets a token see only the
// cells of its first sequence. Memory does not depend on which cells a token sees: the
// compute buffers are reserved for N_CTX cells either way.
#include "llama.h"
#include "xquant.h"
#include "xquant-modes.h"
#include "xquant-tool.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr int ubatch = 512;

// the process's peak resident set (VmHWM), in bytes
long long peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::atoll(line.c_str() + 6) * 1024;
        }
    }
    return -1;
}

void decode_or_exit(llama_context * ctx, const llama_batch & batch, const char * what) {
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed (%s)\n", what);
        std::exit(1);
    }
}

} // namespace

int main(int argc, char ** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s MODEL MODE N_CTX THREADS\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[2];
    const int n_ctx = std::atoi(argv[3]);
    const int threads = std::atoi(argv[4]);
    if (n_ctx < ubatch || n_ctx % ubatch != 0 || n_ctx / ubatch > (int) llama_max_parallel_sequences() || threads < 1) {
        std::fprintf(stderr, "N_CTX must be a multiple of %d up to %d cells, THREADS at least 1\n", ubatch, ubatch * (int) llama_max_parallel_sequences());
        return 2;
    }
    llama_model * model = xq_tool_load_model(argv[1], false);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_seq = n_ctx / ubatch;

    llama_context_params params = llama_context_default_params();
    params.n_ctx = n_ctx;
    params.n_batch = params.n_ubatch = ubatch;
    params.n_seq_max = n_seq;
    params.kv_unified = true;
    params.n_threads = params.n_threads_batch = threads;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    if (!xq_apply_mode(mode, -1, params)) {
        std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
        return 2;
    }
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr) {
        std::fprintf(stderr, "could not create a %s context of %d cells\n", mode.c_str(), n_ctx);
        return 2;
    }

    // random tokens: memory does not depend on the text
    std::mt19937 rng(1);
    std::uniform_int_distribution<llama_token> token(0, llama_vocab_n_tokens(vocab) - 1);
    llama_batch batch = llama_batch_init(ubatch, 0, n_seq);
    for (int seq = 0; seq < n_seq; ++seq) {
        batch.n_tokens = ubatch - 1;
        for (int i = 0; i < batch.n_tokens; ++i) {
            batch.token[i] = token(rng);
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq;
            batch.logits[i] = i == batch.n_tokens - 1;
        }
        decode_or_exit(ctx, batch, "fill");
    }
    // one token at the next position of every sequence
    batch.n_tokens = 1;
    batch.token[0] = token(rng);
    batch.pos[0] = ubatch - 1;
    batch.n_seq_id[0] = n_seq;
    for (int seq = 0; seq < n_seq; ++seq) {
        batch.seq_id[0][seq] = seq;
    }
    batch.logits[0] = true;
    decode_or_exit(ctx, batch, "decode");

    const llama_xquant_cache_info info = llama_xquant_get_cache_info(ctx);
    std::printf("{\"mode\":\"%s\",\"nCtx\":%d,\"threads\":%d,\"peakRssBytes\":%lld,\"weightBytes\":%llu,\"cacheBytes\":%llu,\"computeBytes\":%llu}\n",
        mode.c_str(), n_ctx, threads, peak_rss_bytes(), (unsigned long long) llama_model_size(model),
        (unsigned long long) info.bytes, (unsigned long long) info.compute_bytes);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
