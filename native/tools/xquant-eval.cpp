// Quality of cache modes on a text, as llama-perplexity measures it: chunks of
// n_ctx tokens, each starting with BOS, scoring the second half of each chunk.
// Every mode sees the same chunks; the first mode is the reference for KLD.
//
//   xquant-eval MODEL TEXT_FILE N_CTX MAX_CHUNKS BASE_LAYERS THREADS N_UBATCH EXACT_UBATCH MODE...
//   MODE: see xquant-modes.h
//
// Each chunk is decoded in ubatches of N_UBATCH tokens. EXACT_UBATCH 0 (the paper's
// protocol) reads every K/V from the cache; 1 lets each ubatch see its own tokens
// unquantized, as the app does (N_UBATCH 1 then scores exactly as decoding does).
//
// Prints progress to stderr and one JSON array to stdout.
#include "llama.h"
#include "xquant.h"
#include "xquant-modes.h"
#include "xquant-tool.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct ModeResult {
    std::string name;
    llama_xquant_cache_info cache = {};
    double nll_sum = 0.0;
    double kld_sum = 0.0;
    long same_top = 0;
    long scored = 0;
};

// The latent modes of one run share their factors through files here, so that each
// variant's factorisation is computed once per run rather than once per mode.
const std::filesystem::path factors_dir = std::filesystem::temp_directory_path() / ("xquant-eval-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));

llama_context_params mode_params(const std::string & name, int n_ctx, int base_layers, int threads, int n_ubatch, bool exact_ubatch) {
    static std::string factors_paths[4];
    llama_context_params params = llama_context_default_params();
    // sliding-window layers keep only their window, as in the app
    params.swa_full = false;
    params.n_ctx = n_ctx;
    params.n_batch = n_ctx;
    params.n_ubatch = n_ubatch;
    params.n_threads = params.n_threads_batch = threads;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (!xq_apply_mode(name, base_layers, params)) {
        std::fprintf(stderr, "unknown mode %s\n", name.c_str());
        std::exit(2);
    }
    if (!exact_ubatch) {
        params.xquant_variant |= LLAMA_XQUANT_QUANTIZED_UBATCH;
    }
    const int variant = params.xquant_variant & 3;
    if (params.xquant_bits != 0 && variant >= 2) {
        std::filesystem::create_directories(factors_dir);
        factors_paths[variant] = (factors_dir / ("variant-" + std::to_string(variant) + ".factors")).string();
        params.xquant_factors_path = factors_paths[variant].c_str();
    }
    return params;
}

// log-softmax of one row of logits
void log_softmax(const float * logits, int n, std::vector<double> & out) {
    double max = logits[0];
    for (int i = 1; i < n; ++i) {
        max = std::max<double>(max, logits[i]);
    }
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
        sum += std::exp(logits[i] - max);
    }
    const double log_sum = max + std::log(sum);
    out.resize(n);
    for (int i = 0; i < n; ++i) {
        out[i] = logits[i] - log_sum;
    }
}

} // namespace

int main(int argc, char ** argv) {
    if (argc < 10) {
        std::fprintf(stderr, "usage: %s MODEL TEXT_FILE N_CTX MAX_CHUNKS BASE_LAYERS THREADS N_UBATCH EXACT_UBATCH MODE...\n", argv[0]);
        return 2;
    }
    const int n_ctx = std::atoi(argv[3]);
    const int max_chunks = std::atoi(argv[4]);
    const int base_layers = std::atoi(argv[5]);
    const int threads = std::atoi(argv[6]);
    const int n_ubatch = std::atoi(argv[7]);
    const bool exact_ubatch = std::atoi(argv[8]) != 0;

    llama_model * model = xq_tool_load_model(argv[1]);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::ifstream file(argv[2]);
    std::stringstream buffer;
    buffer << file.rdbuf();
    const std::string text = buffer.str();
    std::vector<llama_token> tokens(text.size() + 16);
    const int n_tokens = llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), true, false);
    if (n_tokens < 2 * n_ctx) {
        std::fprintf(stderr, "the text has %d tokens; at least %d are needed\n", n_tokens, 2 * n_ctx);
        return 2;
    }
    tokens.resize(n_tokens);
    int n_chunks = n_tokens / n_ctx;
    if (max_chunks > 0) {
        n_chunks = std::min(n_chunks, max_chunks);
    }

    // One mode's context at a time: each holds its logits and compute buffers, which for a
    // large vocabulary run to gigabytes (Gemma 3 at n_ctx 2048: about 3 GB per context).
    auto make_context = [&](const std::string & name) {
        llama_context * ctx = llama_init_from_model(model, mode_params(name, n_ctx, base_layers, threads, n_ubatch, exact_ubatch));
        if (ctx == nullptr) {
            std::fprintf(stderr, "could not create a %s context\n", name.c_str());
            std::exit(2);
        }
        return ctx;
    };
    std::vector<ModeResult> modes;
    for (int i = 9; i < argc; ++i) {
        ModeResult mode;
        mode.name = argv[i];
        llama_context * ctx = make_context(mode.name);
        mode.cache = llama_xquant_get_cache_info(ctx);
        llama_free(ctx);
        modes.push_back(mode);
    }

    const int first = n_ctx / 2;
    std::vector<std::vector<double>> reference(n_ctx - first);
    std::vector<double> logp;
    llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    for (int chunk = 0; chunk < n_chunks; ++chunk) {
        for (size_t m = 0; m < modes.size(); ++m) {
            ModeResult & mode = modes[m];
            std::fprintf(stderr, "[eval] chunk %d/%d %s\n", chunk + 1, n_chunks, mode.name.c_str());
            llama_context * ctx = make_context(mode.name);
            batch.n_tokens = n_ctx;
            for (int i = 0; i < n_ctx; ++i) {
                batch.token[i] = i == 0 ? llama_vocab_bos(vocab) : tokens[chunk * n_ctx + i];
                batch.pos[i] = i;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = 0;
                batch.logits[i] = i >= first - 1;
            }
            if (llama_decode(ctx, batch) != 0) {
                std::fprintf(stderr, "llama_decode failed for %s\n", mode.name.c_str());
                return 2;
            }
            for (int i = first - 1; i < n_ctx - 1; ++i) {
                log_softmax(llama_get_logits_ith(ctx, i), n_vocab, logp);
                const llama_token next = tokens[chunk * n_ctx + i + 1];
                mode.nll_sum -= logp[next];
                std::vector<double> & ref = reference[i - (first - 1)];
                if (m == 0) {
                    ref = logp;
                }
                size_t top = 0;
                size_t ref_top = 0;
                double kld = 0.0;
                for (int t = 0; t < n_vocab; ++t) {
                    kld += std::exp(ref[t]) * (ref[t] - logp[t]);
                    top = logp[t] > logp[top] ? t : top;
                    ref_top = ref[t] > ref[ref_top] ? t : ref_top;
                }
                mode.kld_sum += kld;
                mode.same_top += top == ref_top;
                mode.scored += 1;
            }
            llama_free(ctx);
        }
    }
    llama_batch_free(batch);

    std::printf("[");
    for (size_t m = 0; m < modes.size(); ++m) {
        const ModeResult & mode = modes[m];
        const llama_xquant_cache_info & info = mode.cache;
        std::printf("%s{\"mode\":\"%s\",\"ppl\":%.6f,\"kld\":%.8e,\"sameTopToken\":%.6f,\"scoredTokens\":%ld,\"chunks\":%d,"
                    "\"bytes\":%llu,\"cells\":%u,\"bitsPerElement\":%.6f,\"baseLayers\":%d}",
                m == 0 ? "" : ",", mode.name.c_str(), std::exp(mode.nll_sum / mode.scored), mode.kld_sum / mode.scored,
                (double) mode.same_top / mode.scored, mode.scored, n_chunks,
                (unsigned long long) info.bytes, info.n_cells, info.bits_per_element, info.base_layers);
    }
    std::printf("]\n");
    llama_model_free(model);
    llama_backend_free();
    std::filesystem::remove_all(factors_dir);
    return 0;
}
