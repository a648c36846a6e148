// The XQuant ggml ops on the CPU backend against the X-cache's own row functions
// (xquant-quant.h) and ggml_mul_mat: GGML_OP_XQ_SET_ROWS must store exactly the
// bytes xq_quantize_row stores, XQ_REBUILD's load form must give exactly
// xq_dequantize_row's values, and the fused form must equal mul_mat(W, X̂) + b
// up to float rounding. So switching xquant-graph.cpp to the ops is a no-op on
// CPU. XQuant-CL's layer lists must store and load what the chained loads do, and
// XQ_ATTN must give with the tokens' visibility exactly what it gives with a mask.
// Runs on the CPU variant the backend loader picks (XQ_CPU_VARIANT forces one) and
// prints one JSON object, with that variant's features; driven by
// native/tests/xquant-ops.test.ts.
#include "ggml.h"
#include "ggml-backend.h"
#include "ggml-xquant.h"
#include "xquant-quant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

struct results {
    int cases = 0;
    int set_rows_byte_mismatches = 0;
    int load_value_mismatches = 0;
    // max over outputs of |rebuilt - reference| / (Σ|w·x̂| + |b|), by weight type
    double rebuild_error_f32 = 0.0;
    double rebuild_error_f16 = 0.0;
    int layer_list_cases = 0;
    int layer_list_mismatches = 0;
    int visibility_cases = 0;
    int visibility_mismatches = 0;
    int visibility_pairs_seen = 0; // (token, cell) pairs visible, so the cases are not all masked
    int lifted_list_cases = 0;
    double lifted_list_error = 0.0; // max |list - chain| over max |chain|
};

static float value_at(const ggml_tensor * t, int64_t i) {
    return t->type == GGML_TYPE_F32 ? ((const float *) t->data)[i] : ggml_fp16_to_fp32(((const ggml_fp16_t *) t->data)[i]);
}

// Floating-point sums in any order are within n·u·Σ|terms| of the exact sum, so the
// fused rebuild and mul_mat may differ by that relative to Σ|w·x̂| + |b|, whatever
// order a CPU's kernels add in; the test compares this ratio with the derived bound.
static double rebuild_error_ratio(const ggml_tensor * rebuilt, const ggml_tensor * reference, const ggml_tensor * w, const ggml_tensor * x_hat, const ggml_tensor * bias) {
    const int64_t n = w->ne[0];
    double worst = 0.0;
    for (int64_t cell = 0; cell < x_hat->ne[1]; ++cell) {
        for (int64_t out = 0; out < w->ne[1]; ++out) {
            double magnitude = bias ? std::fabs(value_at(bias, out)) : 0.0;
            for (int64_t i = 0; i < n; ++i) {
                magnitude += std::fabs((double) value_at(w, out * n + i) * value_at(x_hat, cell * n + i));
            }
            const int64_t at = cell * w->ne[1] + out;
            const double error = std::fabs((double) value_at(rebuilt, at) - value_at(reference, at));
            worst = std::max(worst, magnitude > 0.0 ? error / magnitude : error);
        }
    }
    return worst;
}

static void fill(ggml_tensor * t, std::mt19937 & rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    if (t->type == GGML_TYPE_F32) {
        for (int64_t i = 0; i < ggml_nelements(t); ++i) ((float *) t->data)[i] = dist(rng);
    } else {
        for (int64_t i = 0; i < ggml_nelements(t); ++i) ((ggml_fp16_t *) t->data)[i] = ggml_fp32_to_fp16(dist(rng));
    }
}

// one case: n channels, n_cells cells all written (in shuffled order), optional
// base (delta storage), a weight of n_out rows of type type_w, optional bias
static void run_case(ggml_backend_t backend, results & r, int bits, int64_t n, int64_t n_cells, int64_t n_out, ggml_type type_w, bool with_extra, std::mt19937 & rng) {
    ggml_init_params params = { 64u * 1024 * 1024, nullptr, false };
    ggml_context * ctx = ggml_init(params);
    const size_t row_bytes = xq_row_bytes(n, bits);

    ggml_tensor * storage = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, row_bytes * n_cells);
    ggml_tensor * rows = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, n_cells);
    ggml_tensor * idxs = ggml_new_tensor_1d(ctx, GGML_TYPE_I64, n_cells);
    ggml_tensor * base = with_extra ? ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, n_cells) : nullptr;
    ggml_tensor * w = ggml_new_tensor_2d(ctx, type_w, n, n_out);
    ggml_tensor * bias = with_extra ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n_out) : nullptr;
    std::memset(storage->data, 0, ggml_nbytes(storage));
    fill(rows, rng);
    fill(w, rng);
    if (base) fill(base, rng);
    if (bias) fill(bias, rng);
    std::vector<int64_t> order(n_cells);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::memcpy(idxs->data, order.data(), n_cells * sizeof(int64_t));

    ggml_tensor * stored = ggml_xq_set_rows(ctx, storage, rows, idxs, base, bits);
    ggml_tensor * loaded = ggml_xq_load(ctx, stored, base, n, n_cells, bits);
    ggml_tensor * rebuilt = ggml_xq_rebuild(ctx, stored, w, bias, n_cells, bits);
    // the X-cache's graph today: X̂ (dequantized, without base) through mul_mat, plus bias
    ggml_tensor * plain = ggml_xq_load(ctx, stored, nullptr, n, n_cells, bits);
    ggml_tensor * reference = ggml_mul_mat(ctx, w, plain);
    if (bias) reference = ggml_add(ctx, reference, bias);

    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, stored);
    ggml_build_forward_expand(gf, loaded);
    ggml_build_forward_expand(gf, rebuilt);
    ggml_build_forward_expand(gf, reference);
    ggml_backend_graph_compute(backend, gf);

    // the row functions, cell by cell
    std::vector<uint8_t> expect_bytes(row_bytes * n_cells);
    std::vector<float> delta(n);
    std::vector<float> x_hat(n);
    for (int64_t t = 0; t < n_cells; ++t) {
        const int64_t cell = order[t];
        const float * row = (const float *) rows->data + t * n;
        for (int64_t i = 0; i < n; ++i) delta[i] = base ? row[i] - ((const float *) base->data)[cell * n + i] : row[i];
        xq_quantize_row(delta.data(), expect_bytes.data() + cell * row_bytes, n, bits);
    }
    r.set_rows_byte_mismatches += std::memcmp(expect_bytes.data(), storage->data, expect_bytes.size()) != 0;
    for (int64_t cell = 0; cell < n_cells; ++cell) {
        xq_dequantize_row(expect_bytes.data() + cell * row_bytes, x_hat.data(), n, bits);
        for (int64_t i = 0; i < n; ++i) {
            const float expect = base ? x_hat[i] + ((const float *) base->data)[cell * n + i] : x_hat[i];
            r.load_value_mismatches += ((const float *) loaded->data)[cell * n + i] != expect;
        }
    }
    double & worst = type_w == GGML_TYPE_F32 ? r.rebuild_error_f32 : r.rebuild_error_f16;
    worst = std::max(worst, rebuild_error_ratio(rebuilt, reference, w, plain, bias));
    r.cases++;
    ggml_free(ctx);
}

// every cell 0..n_cells-1 once, in a random order (I64)
static ggml_tensor * shuffled_cells(ggml_context * ctx, int64_t n_cells, std::mt19937 & rng) {
    ggml_tensor * idxs = ggml_new_tensor_1d(ctx, GGML_TYPE_I64, n_cells);
    std::vector<int64_t> order(n_cells);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::memcpy(idxs->data, order.data(), n_cells * sizeof(int64_t));
    return idxs;
}

// XQuant-CL's layer list (ggml_xq_layers): three layers stored as deltas against the list
// of the layers before them must store the bytes of deltas against the chained loads
// (the GEMM path's accumulator), and the list's load must give the chain's values.
static void run_layer_list_case(ggml_backend_t backend, results & r, int bits, int64_t n, int64_t n_cells, std::mt19937 & rng) {
    constexpr int n_layers = 3;
    ggml_init_params params = { 16u * 1024 * 1024, nullptr, false };
    ggml_context * ctx = ggml_init(params);
    const size_t row_bytes = xq_row_bytes(n, bits);
    ggml_tensor * idxs = shuffled_cells(ctx, n_cells, rng);

    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_tensor * by_list[n_layers];
    ggml_tensor * by_chain[n_layers];
    ggml_tensor * list = nullptr;
    ggml_tensor * chain = nullptr;
    for (int l = 0; l < n_layers; ++l) {
        ggml_tensor * rows = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, n_cells);
        fill(rows, rng);
        for (ggml_tensor ** storage : { &by_list[l], &by_chain[l] }) {
            *storage = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, row_bytes * n_cells);
            std::memset((*storage)->data, 0, ggml_nbytes(*storage));
        }
        ggml_tensor * stored_by_list = ggml_xq_set_rows(ctx, by_list[l], rows, idxs, list, bits);
        ggml_tensor * stored_by_chain = ggml_xq_set_rows(ctx, by_chain[l], rows, idxs, chain, bits);
        list = ggml_xq_layers(ctx, list, stored_by_list, n, bits);
        chain = ggml_xq_load(ctx, stored_by_chain, chain, n, n_cells, bits);
        ggml_build_forward_expand(gf, chain);
    }
    ggml_tensor * list_loaded = ggml_xq_layers_load(ctx, list, n_cells);
    ggml_build_forward_expand(gf, list_loaded);
    ggml_backend_graph_compute(backend, gf);

    for (int l = 0; l < n_layers; ++l) {
        r.layer_list_mismatches += std::memcmp(by_list[l]->data, by_chain[l]->data, row_bytes * n_cells) != 0;
    }
    r.layer_list_mismatches += std::memcmp(list_loaded->data, chain->data, ggml_nbytes(chain)) != 0;
    r.layer_list_cases++;
    ggml_free(ctx);
}

// GQA-CL's lifted list (ggml_xq_layers_lifted): three layers of f16 latents, each stored by
// ggml_xq_set_rows_projected as project * (X - the list's sum), must reconstruct what the GEMM
// path's chain does (latent rows and their deltas by mul_mat, the sum carried through each
// layer's lift); only float rounding (and f16's at the store) separates the two.
static void run_lifted_list_case(ggml_backend_t backend, results & r, std::mt19937 & rng) {
    constexpr int n_layers = 3, bits = 16;
    constexpr int64_t width = 128, n = 64, n_cells = 37;
    ggml_init_params params = { 16u * 1024 * 1024, nullptr, false };
    ggml_context * ctx = ggml_init(params);
    const size_t row_bytes = xq_row_bytes(n, bits);
    ggml_tensor * idxs = shuffled_cells(ctx, n_cells, rng);

    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_tensor * list = nullptr;
    ggml_tensor * chain = nullptr;
    for (int l = 0; l < n_layers; ++l) {
        ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, width, n_cells);
        ggml_tensor * project = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, width, n);
        ggml_tensor * lift = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, width);
        fill(x, rng);
        fill(project, rng);
        fill(lift, rng);
        ggml_tensor * by_list = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, row_bytes * n_cells);
        ggml_tensor * by_chain = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, row_bytes * n_cells);
        ggml_tensor * latent = ggml_mul_mat(ctx, project, x);
        ggml_tensor * stored_by_list = list ? ggml_xq_set_rows_projected(ctx, by_list, x, idxs, list, project, bits)
            : ggml_xq_set_rows(ctx, by_list, latent, idxs, nullptr, bits);
        ggml_tensor * stored_by_chain = ggml_xq_set_rows(ctx, by_chain, latent, idxs, chain ? ggml_mul_mat(ctx, project, chain) : nullptr, bits);
        list = ggml_xq_layers_lifted(ctx, list, stored_by_list, lift, n, bits);
        ggml_tensor * lifted = ggml_mul_mat(ctx, lift, ggml_xq_load(ctx, stored_by_chain, nullptr, n, n_cells, bits));
        chain = chain ? ggml_add(ctx, chain, lifted) : lifted;
        ggml_build_forward_expand(gf, chain);
    }
    ggml_tensor * list_loaded = ggml_xq_layers_load(ctx, list, n_cells);
    ggml_build_forward_expand(gf, list_loaded);
    ggml_backend_graph_compute(backend, gf);

    // both by cell
    double worst = 0.0, scale = 0.0;
    for (int64_t i = 0; i < width * n_cells; ++i) {
        scale = std::max(scale, (double) std::fabs(((const float *) chain->data)[i]));
        worst = std::max(worst, (double) std::fabs(((const float *) list_loaded->data)[i] - ((const float *) chain->data)[i]));
    }
    r.lifted_list_error = std::max(r.lifted_list_error, worst / scale);
    r.lifted_list_cases++;
    ggml_free(ctx);
}

// XQ_ATTN with the tokens' visibility and the cells' table must give exactly what it gives
// with llama.cpp's mask built from the same cells (sequences past the first 32, empty cells, windows),
// for decode, a small ubatch and a tiled prefill ubatch, V rebuilt or absorbed.
static void run_visibility_case(ggml_backend_t backend, results & r, int64_t n_tokens, bool absorb_v, std::mt19937 & rng) {
    constexpr int64_t width = 128, head_dim = 32, n_head = 4, d_kv = 64, n_cells = 2500;
    constexpr int bits = 4;
    ggml_init_params params = { 64u * 1024 * 1024, nullptr, false };
    ggml_context * ctx = ggml_init(params);
    const size_t row_bytes = xq_row_bytes(width, bits);
    ggml_tensor * storage = ggml_new_tensor_1d(ctx, GGML_TYPE_I8, row_bytes * n_cells);
    std::vector<float> row(width);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int64_t cell = 0; cell < n_cells; ++cell) {
        for (float & v : row) v = dist(rng);
        xq_quantize_row(row.data(), (uint8_t *) storage->data + cell * row_bytes, width, bits);
    }
    ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, head_dim, n_head, n_tokens);
    ggml_tensor * wk = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, width, d_kv);
    ggml_tensor * wv = absorb_v ? nullptr : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, width, d_kv);
    fill(q, rng);
    fill(wk, rng);
    if (wv) fill(wv, rng);

    // cells: positions 0..n_cells-1 shuffled, each in any set of four sequences spread over
    // three rows of bits (70 sequences), or empty
    constexpr int32_t sequences[4] = { 0, 1, 37, 69 };
    constexpr int64_t seq_words = 3;
    ggml_tensor * cell_pos = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, n_cells);
    ggml_tensor * table = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n_cells, 1 + seq_words);
    std::vector<int32_t> positions(n_cells);
    std::iota(positions.begin(), positions.end(), 0);
    std::shuffle(positions.begin(), positions.end(), rng);
    std::uniform_int_distribution<uint32_t> seq_sets(0, 15);
    std::vector<uint32_t> cell_sets(n_cells);
    int32_t * pos = (int32_t *) table->data;
    const auto seq_bits = [&](int64_t word) { return (uint32_t *) ((char *) table->data + (word + 1) * table->nb[1]); };
    for (int64_t c = 0; c < n_cells; ++c) {
        cell_sets[c] = seq_sets(rng);
        for (int64_t word = 0; word < seq_words; ++word) seq_bits(word)[c] = 0;
        for (int i = 0; i < 4; ++i) {
            if (cell_sets[c] >> i & 1u) seq_bits(sequences[i] / 32)[c] |= 1u << sequences[i] % 32;
        }
        pos[c] = cell_sets[c] ? positions[c] : 0;
        ((int32_t *) cell_pos->data)[c] = pos[c];
    }
    // tokens: a sequence, a position, and a window of 64 positions or none
    ggml_tensor * tokens = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 3, n_tokens);
    ggml_tensor * mask = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_cells, n_tokens);
    std::uniform_int_distribution<int32_t> token_pos(0, n_cells - 1);
    for (int64_t t = 0; t < n_tokens; ++t) {
        int32_t * token = (int32_t *) tokens->data + 3 * t;
        token[0] = sequences[t % 4];
        token[2] = token_pos(rng);
        token[1] = t % 3 == 0 ? token[2] - 63 : INT32_MIN;
        for (int64_t c = 0; c < n_cells; ++c) {
            const bool seen = (cell_sets[c] >> (t % 4) & 1u) && pos[c] >= token[1] && pos[c] <= token[2];
            ((float *) mask->data)[t * n_cells + c] = seen ? 0.0f : -INFINITY;
            r.visibility_pairs_seen += seen;
        }
    }

    const ggml_xq_attn_rope rope = { (int) head_dim, GGML_ROPE_TYPE_NEOX, 4096, 10000.0f, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f };
    const float kq_scale = 1.0f / std::sqrt((float) head_dim);
    ggml_tensor * by_mask = ggml_xq_attn(ctx, storage, q, wk, wv, cell_pos, width, bits, kq_scale, &rope);
    ggml_xq_attn_set_mask(by_mask, mask);
    ggml_tensor * by_visibility = ggml_xq_attn(ctx, storage, q, wk, wv, table, width, bits, kq_scale, &rope);
    ggml_xq_attn_set_visibility(by_visibility, tokens);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, by_mask);
    ggml_build_forward_expand(gf, by_visibility);
    ggml_backend_graph_compute(backend, gf);
    r.visibility_mismatches += std::memcmp(by_mask->data, by_visibility->data, ggml_nbytes(by_mask)) != 0;
    r.visibility_cases++;
    ggml_free(ctx);
}

// The features of the CPU variant that was loaded ("AVX2", "AVX512", "AMX_INT8", ...), as JSON
static std::string cpu_features(ggml_backend_reg_t cpu) {
    auto get_features = (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(cpu, "ggml_backend_get_features");
    std::string json = "[";
    for (const ggml_backend_feature * f = get_features ? get_features(cpu) : nullptr; f && f->name; ++f) {
        if (std::strcmp(f->value, "1") == 0) {
            json += std::string(json.size() > 1 ? ", " : "") + "\"" + f->name + "\"";
        }
    }
    return json + "]";
}

int main() {
    ggml_backend_load_all();
    ggml_backend_reg_t cpu = ggml_backend_reg_by_name("CPU");
    ggml_backend_t backend = cpu ? ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr) : nullptr;
    if (backend == nullptr) {
        std::fprintf(stderr, "no CPU backend could be loaded (XQ_CPU_VARIANT=%s)\n", std::getenv("XQ_CPU_VARIANT") ? std::getenv("XQ_CPU_VARIANT") : "");
        return 2;
    }
    auto set_n_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(cpu, "ggml_backend_set_n_threads");
    set_n_threads(backend, 2);
    std::mt19937 rng(1234);
    results r;
    for (int bits : { 2, 3, 4, 8, 16 }) {
        for (int64_t n : { 256, 96, 64 }) {
            for (ggml_type type_w : { GGML_TYPE_F32, GGML_TYPE_F16 }) {
                for (bool with_extra : { false, true }) {
                    run_case(backend, r, bits, n, 37, 48, type_w, with_extra, rng);
                }
            }
            run_layer_list_case(backend, r, bits, n, 37, rng);
        }
    }
    for (int i = 0; i < 3; ++i) {
        run_lifted_list_case(backend, r, rng);
    }
    for (int64_t n_tokens : { 1, 5, 20 }) {
        for (bool absorb_v : { false, true }) {
            run_visibility_case(backend, r, n_tokens, absorb_v, rng);
        }
    }
    std::printf("{\"cases\": %d, \"setRowsByteMismatches\": %d, \"loadValueMismatches\": %d, \"rebuildErrorF32\": %.3e, \"rebuildErrorF16\": %.3e, \"layerListCases\": %d, \"layerListMismatches\": %d, "
        "\"visibilityCases\": %d, \"visibilityMismatches\": %d, \"visibilityPairsSeen\": %d, \"liftedListCases\": %d, \"liftedListError\": %.3e, \"cpuFeatures\": %s}\n",
        r.cases, r.set_rows_byte_mismatches, r.load_value_mismatches, r.rebuild_error_f32, r.rebuild_error_f16,
        r.layer_list_cases, r.layer_list_mismatches, r.visibility_cases, r.visibility_mismatches, r.visibility_pairs_seen,
        r.lifted_list_cases, r.lifted_list_error,
        cpu_features(cpu).c_str());
    ggml_backend_free(backend);
    return 0;
}
