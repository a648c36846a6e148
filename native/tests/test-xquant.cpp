// Native checks of the X-cache against llama.cpp's own f16 KV cache, through
// the public C API. Each subcommand prints one JSON object; the thresholds live
// in native/tests/xquant.test.ts.
//
//   xquant-native-tests compare MODEL MODE FA SEQUENCES [REFERENCE [PROMPT]]  greedy tokens + logits NMSE vs kv-f16 (or REFERENCE),
//                                                         after a PROMPT-token prefill (default 32)
//   xquant-native-tests ubatch  MODEL MODE               prefill and first decode: logits NMSE vs kv-f16, exact ubatch on and off
//   xquant-native-tests shift   MODEL MODE               decode after seq_add vs a fresh run at the shifted positions
//   xquant-native-tests seqrm   MODEL MODE               seq_rm + re-decode vs the original
//   xquant-native-tests state   MODEL MODE OTHER_MODE    save/load round trip, and a cross-mode load
// MODE: see native/tools/xquant-modes.h
//   xquant-native-tests quantizers MODEL TEXT_FILE       X reconstruction error: our format vs ggml block types
//   xquant-native-tests crosslayer MODEL TEXT_FILE       XQuant-CL design study: delta space and quantization axis
//   xquant-native-tests channels   MODEL TEXT_FILE       outlier channels of X and the residual stream, per layer
#include "llama.h"
#include "xquant.h"
#include "xquant-quant.h"
#include "xquant-modes.h"
#include "xquant-tool.h"

#include "ggml.h"
#include "ggml-backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Mode {
    std::string name;
    bool flash_attn;
};

llama_context * make_context(llama_model * model, Mode mode, int n_seq = 1) {
    llama_context_params params = llama_context_default_params();
    params.n_ctx = 1024;
    params.n_batch = 512;
    params.n_ubatch = 512;
    params.n_seq_max = n_seq;
    // sliding-window layers keep only their window, as node-llama-cpp's contexts do
    params.swa_full = false;
    params.n_threads = params.n_threads_batch = 2;
    params.flash_attn_type = mode.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (!xq_apply_mode(mode.name, -1, params)) {
        std::fprintf(stderr, "unknown mode %s\n", mode.name.c_str());
        std::exit(2);
    }
    // XQ_FACTORS_PREFIX: a latent mode's factors are read from, or computed once into,
    // <prefix>-latent.bin or <prefix>-latent-cl.bin, as the app's engine names them
    // (the prefix names the model file): on a real model they take half a minute to compute.
    static std::string factors_path;
    const int variant = params.xquant_variant & 3;
    const char * factors_prefix = std::getenv("XQ_FACTORS_PREFIX");
    if (factors_prefix != nullptr && params.xquant_bits != 0 && variant >= 2) {
        factors_path = std::string(factors_prefix) + (variant == 2 ? "-latent.bin" : "-latent-cl.bin");
        params.xquant_factors_path = factors_path.c_str();
    }
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr) {
        std::fprintf(stderr, "could not create a %s context\n", mode.name.c_str());
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
// all_outputs keeps every token's row through the last layer (for the activation studies).
std::vector<float> decode(llama_context * ctx, const std::vector<llama_token> & toks, llama_pos pos0, llama_seq_id seq = 0, bool all_outputs = false) {
    llama_batch batch = llama_batch_init((int32_t) toks.size(), 0, 1);
    for (size_t i = 0; i < toks.size(); ++i) {
        batch.token[i] = toks[i];
        batch.pos[i] = pos0 + (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = all_outputs || i + 1 == toks.size();
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

// Decodes a prompt in batches of at most n_batch tokens; returns the last token's logits.
std::vector<float> prefill(llama_context * ctx, const std::vector<llama_token> & toks, llama_seq_id seq) {
    const size_t n_batch = llama_n_batch(ctx);
    std::vector<float> logits;
    for (size_t start = 0; start < toks.size(); start += n_batch) {
        const size_t end = std::min(toks.size(), start + n_batch);
        logits = decode(ctx, std::vector<llama_token>(toks.begin() + start, toks.begin() + end), (llama_pos) start, seq);
    }
    return logits;
}

// Prefill n_prompt tokens per sequence, then `steps` greedy decode steps, teacher-forced by the reference.
int compare(llama_model * model, const std::string & mode, bool flash_attn, int n_seq, const std::string & reference_mode, int n_prompt, int steps) {
    llama_context * reference = make_context(model, { reference_mode, flash_attn }, n_seq);
    llama_context * test = make_context(model, { mode, flash_attn }, n_seq);
    double nmse_max = 0.0;
    double nmse_sum = 0.0;
    int same_tokens = 0;
    int near_ties = 0;
    int diverged_outside_ties = 0;
    int first_divergence = -1;
    for (int seq = 0; seq < n_seq; ++seq) {
        const auto prompt = tokens(model, n_prompt, 7 + seq);
        auto ref_logits = prefill(reference, prompt, seq);
        auto test_logits = prefill(test, prompt, seq);
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
            ref_logits = decode(reference, { next }, n_prompt + step, seq);
            test_logits = decode(test, { next }, n_prompt + step, seq);
        }
    }
    const llama_xquant_cache_info info = llama_xquant_get_cache_info(test);
    std::printf("{\"mode\":\"%s\",\"reference\":\"%s\",\"flashAttention\":%s,\"sequences\":%d,\"steps\":%d,\"sameTokens\":%d,\"nearTies\":%d,"
                "\"divergedOutsideTies\":%d,\"firstDivergence\":%d,\"nmseMax\":%.6e,\"nmseMean\":%.6e,\"bytes\":%llu,\"bitsPerElement\":%.4f}\n",
            mode.c_str(), reference_mode.c_str(), flash_attn ? "true" : "false", n_seq, steps * n_seq, same_tokens, near_ties, diverged_outside_ties, first_divergence,
            nmse_max, nmse_sum / (steps * n_seq), (unsigned long long) info.bytes, info.bits_per_element);
    llama_free(test);
    llama_free(reference);
    return 0;
}

// 64 tokens at positions 0..63, shifted by +100 with seq_add, then one more
// token; against a fresh context that saw the same tokens at 100..163.
int shift(llama_model * model, const std::string & mode) {
    const auto toks = tokens(model, 65, 11);
    const std::vector<llama_token> history(toks.begin(), toks.end() - 1);
    llama_context * shifted = make_context(model, { mode, false });
    decode(shifted, history, 0);
    llama_memory_seq_add(llama_get_memory(shifted), 0, 0, -1, 100);
    const auto after_shift = decode(shifted, { toks.back() }, 164);

    llama_context * fresh = make_context(model, { mode, false });
    decode(fresh, history, 100);
    const auto reference = decode(fresh, { toks.back() }, 164);
    std::printf("{\"mode\":\"%s\",\"nmse\":%.6e,\"sameToken\":%s}\n", mode.c_str(), nmse(after_shift, reference),
            argmax(after_shift) == argmax(reference) ? "true" : "false");
    llama_free(fresh);
    llama_free(shifted);
    return 0;
}

// 48 tokens as 32 + 16; remove the last 16 with seq_rm and decode them again.
int seqrm(llama_model * model, const std::string & mode) {
    const auto toks = tokens(model, 48, 13);
    const std::vector<llama_token> tail(toks.begin() + 32, toks.end());
    llama_context * ctx = make_context(model, { mode, false });
    decode(ctx, std::vector<llama_token>(toks.begin(), toks.begin() + 32), 0);
    const auto original = decode(ctx, tail, 32);
    if (!llama_memory_seq_rm(llama_get_memory(ctx), 0, 32, -1)) {
        std::fprintf(stderr, "seq_rm failed\n");
        return 2;
    }
    const auto redone = decode(ctx, tail, 32);
    std::printf("{\"mode\":\"%s\",\"nmse\":%.6e}\n", mode.c_str(), nmse(redone, original));
    llama_free(ctx);
    return 0;
}

// 48 tokens in one ubatch, then one more token: the last logits of each against kv-f16,
// with the ubatch's own cells unquantized (the default) and read from the cache (+quantized-ubatch).
int ubatch(llama_model * model, const std::string & mode) {
    const auto toks = tokens(model, 49, 19);
    const std::vector<llama_token> prompt(toks.begin(), toks.end() - 1);
    llama_context * reference = make_context(model, { "kv-f16", false });
    const auto ref_prefill = decode(reference, prompt, 0);
    const auto ref_next = decode(reference, { toks.back() }, 48);
    std::printf("{\"mode\":\"%s\"", mode.c_str());
    for (const std::string & variant : { mode, mode + "+quantized-ubatch" }) {
        llama_context * ctx = make_context(model, { variant, false });
        const double prefill_nmse = nmse(decode(ctx, prompt, 0), ref_prefill);
        const double next_nmse = nmse(decode(ctx, { toks.back() }, 48), ref_next);
        std::printf(",\"%s\":{\"prefillNmse\":%.6e,\"nextNmse\":%.6e}", variant == mode ? "exact" : "quantized", prefill_nmse, next_nmse);
        llama_free(ctx);
    }
    std::printf("}\n");
    llama_free(reference);
    return 0;
}

// Save after 40 tokens, load into a fresh context of the same mode, decode one
// more token in both; then try to load the state into another mode.
int state(llama_model * model, const std::string & mode, const std::string & other_mode) {
    const auto toks = tokens(model, 41, 17);
    const std::vector<llama_token> history(toks.begin(), toks.end() - 1);
    llama_context * source = make_context(model, { mode, false });
    decode(source, history, 0);
    std::vector<uint8_t> saved(llama_state_seq_get_size(source, 0));
    saved.resize(llama_state_seq_get_data(source, saved.data(), saved.size(), 0));
    const auto continued = decode(source, { toks.back() }, 40);

    llama_context * restored = make_context(model, { mode, false });
    const size_t read = llama_state_seq_set_data(restored, saved.data(), saved.size(), 0);
    const auto after_load = decode(restored, { toks.back() }, 40);

    llama_context * other = make_context(model, { other_mode, false });
    const size_t read_other = llama_state_seq_set_data(other, saved.data(), saved.size(), 0);
    std::printf("{\"mode\":\"%s\",\"stateBytes\":%zu,\"loaded\":%s,\"nmse\":%.6e,\"otherMode\":\"%s\",\"otherLoaded\":%s}\n",
            mode.c_str(), saved.size(), read == saved.size() ? "true" : "false", nmse(after_load, continued),
            other_mode.c_str(), read_other != 0 ? "true" : "false");
    llama_free(other);
    llama_free(restored);
    llama_free(source);
    return 0;
}


// Activations of a kv-f16 run, by tensor name: X ("attn_norm-N"), the residual
// stream entering each layer ("inp_embd", "l_out-N").
using activations = std::map<std::string, std::vector<float>>;

bool collect_activations(ggml_tensor * t, bool ask, void * user_data) {
    // the token embedding lookup is unnamed: find it by its source
    const bool embedding = t->op == GGML_OP_GET_ROWS && t->src[0] != nullptr && std::strcmp(t->src[0]->name, "token_embd.weight") == 0;
    const bool wanted = t->type == GGML_TYPE_F32 && (embedding || std::strncmp(t->name, "attn_norm-", 10) == 0
            || std::strncmp(t->name, "l_out-", 6) == 0);
    if (!wanted) {
        return !ask;
    }
    if (!ask) {
        auto & rows = (*(activations *) user_data)[embedding ? "inp_embd" : t->name];
        rows.resize(ggml_nelements(t));
        ggml_backend_tensor_get(t, rows.data(), 0, ggml_nbytes(t));
    }
    return true;
}

activations run_and_collect(llama_model * model, const char * text_path) {
    std::ifstream file(text_path);
    std::stringstream buffer;
    buffer << file.rdbuf();
    const std::string text = buffer.str();
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::vector<llama_token> toks(text.size() + 16);
    toks.resize(llama_tokenize(vocab, text.c_str(), (int32_t) text.size(), toks.data(), (int32_t) toks.size(), true, false));
    toks.resize(std::min<size_t>(toks.size(), 512));

    activations result;
    llama_context_params params = llama_context_default_params();
    params.n_ctx = params.n_batch = params.n_ubatch = 512;
    params.n_threads = params.n_threads_batch = 2;
    params.cb_eval = collect_activations;
    params.cb_eval_user_data = &result;
    llama_context * ctx = llama_init_from_model(model, params);
    decode(ctx, toks, 0, 0, /*all_outputs*/ true);
    llama_free(ctx);
    return result;
}

// Rotates every block of n values with the row format's Hadamard transform (its own inverse).
void hadamard_blocks(std::vector<float> & x, int n) {
    for (size_t b = 0; b < x.size(); b += n) {
        xq_hadamard(x.data() + b, n);
    }
}

// Quantizes and dequantizes rows of width n with our X-cache row format.
std::vector<float> round_trip(const std::vector<float> & m, int64_t n, int bits) {
    std::vector<float> out(m.size());
    std::vector<uint8_t> packed(xq_row_bytes(n, 16));
    for (size_t r = 0; r < m.size(); r += n) {
        xq_quantize_row(m.data() + r, packed.data(), n, bits);
        xq_dequantize_row(packed.data(), out.data() + r, n, bits);
    }
    return out;
}

int quantizers(llama_model * model, const char * text_path) {
    activations collected = run_and_collect(model, text_path);
    std::vector<float> x;
    for (int il = 0; il < llama_model_n_layer(model); ++il) {
        const auto & layer_x = collected["attn_norm-" + std::to_string(il)];
        x.insert(x.end(), layer_x.begin(), layer_x.end());
    }

    const int64_t n_embd = llama_model_n_embd(model);
    std::printf("[");
    bool first = true;
    auto report = [&](const std::string & name, double bits, const std::vector<float> & y) {
        std::printf("%s{\"format\":\"%s\",\"bitsPerElement\":%.4f,\"nmse\":%.6e}", first ? "" : ",", name.c_str(), bits, nmse(y, x));
        first = false;
    };
    for (int bits : { 8, 4, 3, 2 }) {
        report("xq-" + std::to_string(bits), 8.0 * xq_row_bytes(n_embd, bits) / n_embd, round_trip(x, n_embd, bits));
    }
    std::vector<float> y(x.size());
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
                hadamard_blocks(src, 64);
            }
            for (size_t r = 0; r < x.size(); r += n_embd) {
                traits->from_float_ref(src.data() + r, block.data(), n_embd);
                traits->to_float(block.data(), y.data() + r, n_embd);
            }
            if (rotate) {
                hadamard_blocks(y, 64);
            }
            report(std::string(traits->type_name) + (rotate ? " + hadamard64" : ""), bits, y);
        }
    }
    std::printf("]\n");
    return 0;
}

// The same, along tokens: each channel quantized in groups of consecutive tokens.
std::vector<float> round_trip_channels(const std::vector<float> & m, int64_t n_embd, int bits) {
    const int64_t n_tokens = (int64_t) m.size() / n_embd;
    std::vector<float> t(m.size());
    for (int64_t i = 0; i < n_tokens; ++i) {
        for (int64_t c = 0; c < n_embd; ++c) {
            t[c * n_tokens + i] = m[i * n_embd + c];
        }
    }
    const std::vector<float> q = round_trip(t, n_tokens, bits);
    std::vector<float> out(m.size());
    for (int64_t i = 0; i < n_tokens; ++i) {
        for (int64_t c = 0; c < n_embd; ++c) {
            out[i * n_embd + c] = q[c * n_tokens + i];
        }
    }
    return out;
}

std::vector<float> rms_norm_rows(const std::vector<float> & h, int64_t n) {
    std::vector<float> out(h.size());
    for (size_t r = 0; r < h.size(); r += n) {
        double sum = 0.0;
        for (int64_t c = 0; c < n; ++c) {
            sum += h[r + c] * (double) h[r + c];
        }
        const float scale = 1.0f / std::sqrt((float) (sum / n) + 1e-5f);
        for (int64_t c = 0; c < n; ++c) {
            out[r + c] = h[r + c] * scale;
        }
    }
    return out;
}

std::vector<float> difference(const std::vector<float> & a, const std::vector<float> & b) {
    std::vector<float> out(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
        out[i] = a[i] - b[i];
    }
    return out;
}

void accumulate(std::vector<float> & acc, const std::vector<float> & delta) {
    for (size_t i = 0; i < acc.size(); ++i) {
        acc[i] += delta[i];
    }
}

// XQuant-CL design study on one 512-token chunk: X reconstruction error of the
// layers after the base layer, for plain XQuant and for cross-layer deltas taken
// on post-norm X or on the residual stream (re-normalised), quantized per token
// or per channel. Layer 0 is the base, stored at 4 bits.
int crosslayer(llama_model * model, const char * text_path) {
    activations collected = run_and_collect(model, text_path);
    const int n_layer = llama_model_n_layer(model);
    const int64_t n_embd = llama_model_n_embd(model);
    std::vector<std::vector<float>> x(n_layer);
    std::vector<std::vector<float>> h(n_layer);
    std::vector<std::vector<float>> gamma(n_layer, std::vector<float>(n_embd));
    for (int il = 0; il < n_layer; ++il) {
        x[il] = collected["attn_norm-" + std::to_string(il)];
        h[il] = collected[il == 0 ? "inp_embd" : "l_out-" + std::to_string(il - 1)];
        // the attention norm's weight, recovered as X / rms_norm(h) on the first token
        const std::vector<float> normed = rms_norm_rows(std::vector<float>(h[il].begin(), h[il].begin() + n_embd), n_embd);
        for (int64_t c = 0; c < n_embd; ++c) {
            gamma[il][c] = std::fabs(normed[c]) > 1e-6f ? x[il][c] / normed[c] : 0.0f;
        }
    }
    auto from_residual = [&](const std::vector<float> & h_hat, int il) {
        std::vector<float> out = rms_norm_rows(h_hat, n_embd);
        for (size_t i = 0; i < out.size(); ++i) {
            out[i] *= gamma[il][i % n_embd];
        }
        return out;
    };
    std::printf("[");
    bool first = true;
    for (int bits : { 4, 3, 2 }) {
        for (const std::string variant : { "plain", "cl-postnorm-token", "cl-postnorm-channel", "cl-residual-token", "cl-residual-channel" }) {
            const bool channel = variant.find("channel") != std::string::npos;
            auto quantize = [&](const std::vector<float> & m, int b) { return channel ? round_trip_channels(m, n_embd, b) : round_trip(m, n_embd, b); };
            double err = 0.0;
            double ref = 0.0;
            std::vector<float> acc = variant.find("residual") != std::string::npos ? round_trip(h[0], n_embd, 4) : round_trip(x[0], n_embd, 4);
            for (int il = 1; il < n_layer; ++il) {
                std::vector<float> x_hat;
                if (variant == "plain") {
                    x_hat = quantize(x[il], bits);
                } else if (variant.find("postnorm") != std::string::npos) {
                    accumulate(acc, quantize(difference(x[il], acc), bits));
                    x_hat = acc;
                } else {
                    accumulate(acc, quantize(difference(h[il], acc), bits));
                    x_hat = from_residual(acc, il);
                }
                for (size_t i = 0; i < x_hat.size(); ++i) {
                    err += (x_hat[i] - x[il][i]) * (double) (x_hat[i] - x[il][i]);
                    ref += x[il][i] * (double) x[il][i];
                }
            }
            std::printf("%s{\"bits\":%d,\"variant\":\"%s\",\"nmse\":%.6e}", first ? "" : ",", bits, variant.c_str(), err / ref);
            first = false;
        }
    }
    std::printf("]\n");
    return 0;
}

// Outlier study on one 512-token chunk, per layer, of X and of the residual stream h entering
// the layer: how far the largest channel sits above the median one (max |value| per channel),
// the mean crest factor (max / RMS) of the row format's groups before and after its Hadamard
// rotation, and X's round-trip NMSE in the row format at 4, 3 and 2 bits.
int channels(llama_model * model, const char * text_path) {
    activations collected = run_and_collect(model, text_path);
    const int64_t n_embd = llama_model_n_embd(model);
    const int group = xq_group_size(n_embd);
    auto stats = [&](const std::vector<float> & m) {
        std::vector<float> channel_max(n_embd, 0.0f);
        for (size_t i = 0; i < m.size(); ++i) {
            channel_max[i % n_embd] = std::max(channel_max[i % n_embd], std::fabs(m[i]));
        }
        std::vector<float> sorted = channel_max;
        std::sort(sorted.begin(), sorted.end());
        const int64_t top = std::max_element(channel_max.begin(), channel_max.end()) - channel_max.begin();
        auto mean_crest = [&](const std::vector<float> & v) {
            double sum = 0.0;
            for (size_t g = 0; g < v.size(); g += group) {
                double sq = 0.0;
                float peak = 0.0f;
                for (int j = 0; j < group; ++j) {
                    sq += v[g + j] * (double) v[g + j];
                    peak = std::max(peak, std::fabs(v[g + j]));
                }
                sum += sq > 0.0 ? peak / std::sqrt(sq / group) : 0.0;
            }
            return sum / (double) (v.size() / group);
        };
        std::vector<float> rotated = m;
        hadamard_blocks(rotated, group);
        char out[256];
        std::snprintf(out, sizeof(out), "{\"topChannel\":%lld,\"topOverMedian\":%.2f,\"crest\":%.2f,\"crestRotated\":%.2f}",
                (long long) top, sorted.back() / std::max(sorted[n_embd / 2], 1e-12f), mean_crest(m), mean_crest(rotated));
        return std::string(out);
    };
    std::printf("[");
    for (int il = 0; il < llama_model_n_layer(model); ++il) {
        const auto & x = collected["attn_norm-" + std::to_string(il)];
        const auto & h = collected[il == 0 ? "inp_embd" : "l_out-" + std::to_string(il - 1)];
        std::printf("%s{\"layer\":%d,\"x\":%s,\"h\":%s,\"xNmse\":[%.4e,%.4e,%.4e]}", il == 0 ? "" : ",", il,
                stats(x).c_str(), stats(h).c_str(), nmse(round_trip(x, n_embd, 4), x), nmse(round_trip(x, n_embd, 3), x), nmse(round_trip(x, n_embd, 2), x));
    }
    std::printf("]\n");
    return 0;
}

} // namespace

int main(int argc, char ** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s compare|shift|seqrm|ubatch|state|quantizers|crosslayer|channels MODEL MODE|TEXT [...]\n", argv[0]);
        return 2;
    }
    const std::string command = argv[1];
    llama_model * model = xq_tool_load_model(argv[2]);
    const std::string mode = argv[3];
    int status = 2;
    if (command == "compare" && argc >= 6) {
        status = compare(model, mode, std::atoi(argv[4]) != 0, std::atoi(argv[5]), argc >= 7 ? argv[6] : "kv-f16",
                argc >= 8 ? std::atoi(argv[7]) : 32, argc >= 9 ? std::atoi(argv[8]) : 256);
    } else if (command == "ubatch") {
        status = ubatch(model, mode);
    } else if (command == "shift") {
        status = shift(model, mode);
    } else if (command == "seqrm") {
        status = seqrm(model, mode);
    } else if (command == "crosslayer") {
        status = crosslayer(model, argv[3]);
    } else if (command == "channels") {
        status = channels(model, argv[3]);
    } else if (command == "quantizers") {
        status = quantizers(model, argv[3]);
    } else if (command == "state" && argc >= 5) {
        status = state(model, mode, argv[4]);
    } else {
        std::fprintf(stderr, "unknown command or missing arguments: %s\n", command.c_str());
    }
    llama_model_free(model);
    llama_backend_free();
    return status;
}
