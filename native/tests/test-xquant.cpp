// Native checks of the X-cache against llama.cpp's own f16 KV cache, through
// the public C API. Each subcommand prints one JSON object; the thresholds live
// in native/tests/xquant.test.ts.
//
//   xquant-native-tests compare MODEL BITS FA SEQUENCES  greedy tokens + logits NMSE vs kv-f16
//   xquant-native-tests shift   MODEL BITS               decode after seq_add vs a fresh run at the shifted positions
//   xquant-native-tests seqrm   MODEL BITS               seq_rm + re-decode vs the original
//   xquant-native-tests state   MODEL BITS OTHER_BITS    save/load round trip, and a cross-mode load
//   xquant-native-tests quantizers MODEL TEXT_FILE       X reconstruction error: our format vs ggml block types
#include "llama.h"
#include "xquant.h"
#include "xquant-quant.h"

#include "ggml.h"
#include "ggml-backend.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Mode {
    int bits; // 0: kv-f16
    bool flash_attn;
};

llama_model * load_model(const char * path) {
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(path, params);
    if (model == nullptr) {
        std::fprintf(stderr, "could not load %s\n", path);
        std::exit(2);
    }
    return model;
}

llama_context * make_context(llama_model * model, Mode mode, int n_seq = 1) {
    llama_context_params params = llama_context_default_params();
    params.n_ctx = 1024;
    params.n_batch = 512;
    params.n_ubatch = 512;
    params.n_seq_max = n_seq;
    params.n_threads = params.n_threads_batch = 2;
    params.flash_attn_type = mode.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    params.xquant_bits = mode.bits;
    params.xquant_base_layers = 0;
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr) {
        std::fprintf(stderr, "could not create a context (bits %d)\n", mode.bits);
        std::exit(2);
    }
    return ctx;
}

// A deterministic token stream that avoids the special tokens 0-2.
std::vector<llama_token> tokens(const llama_model * model, int n, unsigned seed) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<llama_token> result = { 1 };
    unsigned state = seed;
    while ((int) result.size() < n) {
        state = state * 1664525u + 1013904223u;
        result.push_back(3 + (llama_token) ((state >> 8) % (unsigned) (n_vocab - 3)));
    }
    return result;
}

// Decodes tokens of one sequence at consecutive positions from pos0; returns the last token's logits.
std::vector<float> decode(llama_context * ctx, const std::vector<llama_token> & toks, llama_pos pos0, llama_seq_id seq = 0) {
    llama_batch batch = llama_batch_init((int32_t) toks.size(), 0, 1);
    for (size_t i = 0; i < toks.size(); ++i) {
        batch.token[i] = toks[i];
        batch.pos[i] = pos0 + (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = i + 1 == toks.size();
    }
    batch.n_tokens = (int32_t) toks.size();
    if (llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed\n");
        std::exit(2);
    }
    llama_batch_free(batch);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    const float * logits = llama_get_logits_ith(ctx, -1);
    return std::vector<float>(logits, logits + n_vocab);
}

double nmse(const std::vector<float> & test, const std::vector<float> & reference) {
    double err = 0.0;
    double ref = 0.0;
    for (size_t i = 0; i < reference.size(); ++i) {
        err += (test[i] - reference[i]) * (double) (test[i] - reference[i]);
        ref += reference[i] * (double) reference[i];
    }
    return err / std::max(ref, 1e-30);
}

llama_token argmax(const std::vector<float> & logits) {
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    return (llama_token) best;
}

// A step whose top two reference logits are closer than 1e-3 of the logits' RMS
// is a near-tie: any float rounding may pick either token.
bool near_tie(const std::vector<float> & logits) {
    float first = -INFINITY;
    float second = -INFINITY;
    double sum_sq = 0.0;
    for (float value : logits) {
        sum_sq += value * (double) value;
        if (value > first) {
            second = first;
            first = value;
        } else if (value > second) {
            second = value;
        }
    }
    return first - second < 1e-3 * std::sqrt(sum_sq / logits.size());
}

// Prefill 32 tokens per sequence, then 256 greedy decode steps, teacher-forced by the reference.
int compare(llama_model * model, int bits, bool flash_attn, int n_seq) {
    llama_context * reference = make_context(model, { 0, flash_attn }, n_seq);
    llama_context * test = make_context(model, { bits, flash_attn }, n_seq);
    const int steps = 256;
    double nmse_max = 0.0;
    double nmse_sum = 0.0;
    int same_tokens = 0;
    int near_ties = 0;
    int diverged_outside_ties = 0;
    int first_divergence = -1;
    for (int seq = 0; seq < n_seq; ++seq) {
        const auto prompt = tokens(model, 32, 7 + seq);
        auto ref_logits = decode(reference, prompt, 0, seq);
        auto test_logits = decode(test, prompt, 0, seq);
        for (int step = 0; step < steps; ++step) {
            const double e = nmse(test_logits, ref_logits);
            nmse_max = std::max(nmse_max, e);
            nmse_sum += e;
            const llama_token next = argmax(ref_logits);
            const bool tie = near_tie(ref_logits);
            near_ties += tie;
            if (argmax(test_logits) == next) {
                ++same_tokens;
            } else {
                diverged_outside_ties += !tie;
                if (first_divergence < 0) {
                    first_divergence = step;
                }
            }
            ref_logits = decode(reference, { next }, 32 + step, seq);
            test_logits = decode(test, { next }, 32 + step, seq);
        }
    }
    const llama_xquant_cache_info info = llama_xquant_get_cache_info(test);
    std::printf("{\"bits\":%d,\"flashAttention\":%s,\"sequences\":%d,\"steps\":%d,\"sameTokens\":%d,\"nearTies\":%d,"
                "\"divergedOutsideTies\":%d,\"firstDivergence\":%d,\"nmseMax\":%.6e,\"nmseMean\":%.6e,\"bytes\":%llu,\"bitsPerElement\":%.4f}\n",
            bits, flash_attn ? "true" : "false", n_seq, steps * n_seq, same_tokens, near_ties, diverged_outside_ties, first_divergence,
            nmse_max, nmse_sum / (steps * n_seq), (unsigned long long) info.bytes, info.bits_per_element);
    llama_free(test);
    llama_free(reference);
    return 0;
}

// 64 tokens at positions 0..63, shifted by +100 with seq_add, then one more
// token; against a fresh context that saw the same tokens at 100..163.
int shift(llama_model * model, int bits) {
    const auto toks = tokens(model, 65, 11);
    const std::vector<llama_token> history(toks.begin(), toks.end() - 1);
    llama_context * shifted = make_context(model, { bits, false });
    decode(shifted, history, 0);
    llama_memory_seq_add(llama_get_memory(shifted), 0, 0, -1, 100);
    const auto after_shift = decode(shifted, { toks.back() }, 164);

    llama_context * fresh = make_context(model, { bits, false });
    decode(fresh, history, 100);
    const auto reference = decode(fresh, { toks.back() }, 164);
    std::printf("{\"bits\":%d,\"nmse\":%.6e,\"sameToken\":%s}\n", bits, nmse(after_shift, reference),
            argmax(after_shift) == argmax(reference) ? "true" : "false");
    llama_free(fresh);
    llama_free(shifted);
    return 0;
}

// 48 tokens; remove the last 16 with seq_rm and decode them again.
int seqrm(llama_model * model, int bits) {
    const auto toks = tokens(model, 48, 13);
    llama_context * ctx = make_context(model, { bits, false });
    const auto original = decode(ctx, toks, 0);
    if (!llama_memory_seq_rm(llama_get_memory(ctx), 0, 32, -1)) {
        std::fprintf(stderr, "seq_rm failed\n");
        return 2;
    }
    const auto redone = decode(ctx, std::vector<llama_token>(toks.begin() + 32, toks.end()), 32);
    std::printf("{\"bits\":%d,\"nmse\":%.6e}\n", bits, nmse(redone, original));
    llama_free(ctx);
    return 0;
}

// Save after 40 tokens, load into a fresh context of the same mode, decode one
// more token in both; then try to load the state into another mode.
int state(llama_model * model, int bits, int other_bits) {
    const auto toks = tokens(model, 41, 17);
    const std::vector<llama_token> history(toks.begin(), toks.end() - 1);
    llama_context * source = make_context(model, { bits, false });
    decode(source, history, 0);
    std::vector<uint8_t> saved(llama_state_seq_get_size(source, 0));
    saved.resize(llama_state_seq_get_data(source, saved.data(), saved.size(), 0));
    const auto continued = decode(source, { toks.back() }, 40);

    llama_context * restored = make_context(model, { bits, false });
    const size_t read = llama_state_seq_set_data(restored, saved.data(), saved.size(), 0);
    const auto after_load = decode(restored, { toks.back() }, 40);

    llama_context * other = make_context(model, { other_bits, false });
    const size_t read_other = llama_state_seq_set_data(other, saved.data(), saved.size(), 0);
    std::printf("{\"bits\":%d,\"stateBytes\":%zu,\"loaded\":%s,\"nmse\":%.6e,\"otherBits\":%d,\"otherLoaded\":%s}\n",
            bits, saved.size(), read == saved.size() ? "true" : "false", nmse(after_load, continued),
            other_bits, read_other != 0 ? "true" : "false");
    llama_free(other);
    llama_free(restored);
    llama_free(source);
    return 0;
}


// Collects the attention inputs X ("attn_norm-N") of a kv-f16 run over 512 tokens of a text.
bool collect_x(ggml_tensor * t, bool ask, void * user_data) {
    if (std::strncmp(t->name, "attn_norm-", 10) != 0 || t->type != GGML_TYPE_F32) {
        return ask ? false : true;
    }
    if (!ask) {
        auto * rows = (std::vector<float> *) user_data;
        const size_t offset = rows->size();
        rows->resize(offset + ggml_nelements(t));
        ggml_backend_tensor_get(t, rows->data() + offset, 0, ggml_nbytes(t));
    }
    return true;
}

// In-place normalised fast Walsh-Hadamard transform over blocks of n (a power of two); its own inverse.
void hadamard(float * x, int64_t count, int n) {
    const float scale = 1.0f / std::sqrt((float) n);
    for (int64_t b = 0; b < count; b += n) {
        for (int h = 1; h < n; h *= 2) {
            for (int i = 0; i < n; i += 2 * h) {
                for (int j = i; j < i + h; ++j) {
                    const float u = x[b + j];
                    const float v = x[b + j + h];
                    x[b + j] = u + v;
                    x[b + j + h] = u - v;
                }
            }
        }
        for (int i = 0; i < n; ++i) {
            x[b + i] *= scale;
        }
    }
}

double relative_error(const std::vector<float> & x, const std::vector<float> & y) {
    double err = 0.0;
    double ref = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
        err += (x[i] - y[i]) * (double) (x[i] - y[i]);
        ref += x[i] * (double) x[i];
    }
    return err / ref;
}

int quantizers(llama_model * model, const char * text_path) {
    std::ifstream file(text_path);
    std::stringstream buffer;
    buffer << file.rdbuf();
    const std::string text = buffer.str();
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::vector<llama_token> toks(text.size() + 16);
    toks.resize(llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), toks.data(), (int32_t) toks.size(), true, false));
    toks.resize(std::min<size_t>(toks.size(), 512));

    std::vector<float> x;
    llama_context_params params = llama_context_default_params();
    params.n_ctx = params.n_batch = params.n_ubatch = 512;
    params.n_threads = params.n_threads_batch = 2;
    params.cb_eval = collect_x;
    params.cb_eval_user_data = &x;
    llama_context * ctx = llama_init_from_model(model, params);
    decode(ctx, toks, 0);
    llama_free(ctx);

    const int64_t n_embd = llama_model_n_embd(model);
    std::printf("[");
    bool first = true;
    auto report = [&](const std::string & name, double bits, const std::vector<float> & y) {
        std::printf("%s{\"format\":\"%s\",\"bitsPerElement\":%.4f,\"nmse\":%.6e}", first ? "" : ",", name.c_str(), bits, relative_error(x, y));
        first = false;
    };
    std::vector<float> y(x.size());
    std::vector<uint8_t> packed(xq_row_bytes(n_embd, 16));
    for (int bits : { 8, 4, 3, 2 }) {
        for (size_t r = 0; r < x.size(); r += n_embd) {
            xq_quantize_row(x.data() + r, packed.data(), n_embd, bits);
            xq_dequantize_row(packed.data(), y.data() + r, n_embd, bits);
        }
        report("xq-" + std::to_string(bits), 8.0 * xq_row_bytes(n_embd, bits) / n_embd, y);
    }
    for (ggml_type type : { GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q4_K, GGML_TYPE_Q3_K, GGML_TYPE_Q2_K }) {
        const auto * traits = ggml_get_type_traits(type);
        if (n_embd % traits->blck_size != 0) {
            continue;
        }
        const double bits = 8.0 * ggml_row_size(type, n_embd) / n_embd;
        std::vector<uint8_t> block(ggml_row_size(type, n_embd));
        for (bool rotate : { false, true }) {
            std::vector<float> src = x;
            if (rotate) {
                hadamard(src.data(), (int64_t) src.size(), 64);
            }
            for (size_t r = 0; r < x.size(); r += n_embd) {
                traits->from_float_ref(src.data() + r, block.data(), n_embd);
                traits->to_float(block.data(), y.data() + r, n_embd);
            }
            if (rotate) {
                hadamard(y.data(), (int64_t) y.size(), 64);
            }
            report(std::string(traits->type_name) + (rotate ? " + hadamard64" : ""), bits, y);
        }
    }
    std::printf("]\n");
    return 0;
}

} // namespace

int main(int argc, char ** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s compare|shift|seqrm|state MODEL BITS [...]\n", argv[0]);
        return 2;
    }
    const std::string command = argv[1];
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level >= GGML_LOG_LEVEL_ERROR) {
            std::fputs(text, stderr);
        }
    }, nullptr);
    llama_backend_init();
    llama_model * model = load_model(argv[2]);
    const int bits = std::atoi(argv[3]);
    int status = 2;
    if (command == "compare" && argc >= 6) {
        status = compare(model, bits, std::atoi(argv[4]) != 0, std::atoi(argv[5]));
    } else if (command == "shift") {
        status = shift(model, bits);
    } else if (command == "seqrm") {
        status = seqrm(model, bits);
    } else if (command == "quantizers") {
        status = quantizers(model, argv[3]);
    } else if (command == "state" && argc >= 5) {
        status = state(model, bits, std::atoi(argv[4]));
    } else {
        std::fprintf(stderr, "unknown command or missing arguments: %s\n", command.c_str());
    }
    llama_model_free(model);
    llama_backend_free();
    return status;
}
