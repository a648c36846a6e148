// The XQuant ggml ops on the CPU backend against the X-cache's own row functions
// (xquant-quant.h) and ggml_mul_mat: GGML_OP_XQ_SET_ROWS must store exactly the
// bytes xq_quantize_row stores, XQ_REBUILD's load form must give exactly
// xq_dequantize_row's values, and the fused form must equal mul_mat(W, X̂) + b
// up to float rounding. So switching xquant-graph.cpp to the ops is a no-op on
// CPU. Prints one JSON object; driven by native/tests/xquant-ops.test.ts.
#include "ggml.h"
#include "ggml-cpu.h"
#include "ggml-xquant.h"
#include "xquant-quant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

struct results {
    int cases = 0;
    int set_rows_byte_mismatches = 0;
    int load_value_mismatches = 0;
    double rebuild_nmse_max = 0.0;
};

static double nmse(const float * a, const float * b, size_t n) {
    double num = 0.0;
    double den = 0.0;
    for (size_t i = 0; i < n; ++i) {
        num += (double) (a[i] - b[i]) * (a[i] - b[i]);
        den += (double) b[i] * b[i];
    }
    return den > 0.0 ? num / den : num;
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
static void run_case(results & r, int bits, int64_t n, int64_t n_cells, int64_t n_out, ggml_type type_w, bool with_extra, std::mt19937 & rng) {
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
    ggml_graph_compute_with_ctx(ctx, gf, 2);

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
    r.rebuild_nmse_max = std::max(r.rebuild_nmse_max, nmse((const float *) rebuilt->data, (const float *) reference->data, ggml_nelements(reference)));
    r.cases++;
    ggml_free(ctx);
}

int main() {
    std::mt19937 rng(1234);
    results r;
    for (int bits : { 2, 3, 4, 8, 16 }) {
        for (int64_t n : { 256, 96, 64 }) {
            for (ggml_type type_w : { GGML_TYPE_F32, GGML_TYPE_F16 }) {
                for (bool with_extra : { false, true }) {
                    run_case(r, bits, n, 37, 48, type_w, with_extra, rng);
                }
            }
        }
    }
    std::printf("{\"cases\": %d, \"setRowsByteMismatches\": %d, \"loadValueMismatches\": %d, \"rebuildNmseMax\": %.3e}\n",
        r.cases, r.set_rows_byte_mismatches, r.load_value_mismatches, r.rebuild_nmse_max);
    return 0;
}
