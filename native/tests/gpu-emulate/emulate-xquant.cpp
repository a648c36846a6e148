// Runs our GPU kernels for the XQuant ops on the CPU (emulate.h) and compares them
// with the row format's own functions (ggml-xquant.h): set_rows must store the same
// bytes, load must give the same values, and the fused rebuild must match a
// double-precision reference. Built twice by native/tests/gpu-compile.test.ts:
// -DXQ_EMULATE_CUDA with ggml-cuda/xquant-kernels.cuh as kernels.inc, and without
// it with kernels/xquant.metal (prepared by the test) as kernels.inc.
// Prints one JSON object.
#if defined(XQ_EMULATE_CUDA)
#include "cuda-shim.h"
#else
#include "metal-shim.h"
#endif
#include "kernels.inc"
#include "ggml-xquant.h"

// The three launches, as each backend's host code makes them (ggml-cuda/xquant.cu,
// ggml-metal-ops.cpp); base and bias are nullptr when absent.
template <int G>
static void launch_set_rows(const float * rows, int64_t n, int64_t n_tokens, const int64_t * idxs, const float * base, uint8_t * dst, int bits) {
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
#if defined(XQ_EMULATE_CUDA)
    emu_launch((unsigned) n_tokens, (unsigned) (n / G), 32, [&](unsigned x, unsigned y, int t) {
        blockIdx = { x, y, 0 };
        threadIdx = { (unsigned) t, 0, 0 };
        k_xq_set_rows<G>((const char *) rows, n * sizeof(float), (const char *) idxs, true, (const char *) base, n * sizeof(float), dst, bits, row_bytes);
    });
#else
    ggml_metal_kargs_xq_set_rows args = { bits, 1, base != nullptr, row_bytes, (uint64_t) (n * sizeof(float)), (uint64_t) (n * sizeof(float)) };
    emu_launch((unsigned) n_tokens, (unsigned) (n / G), 32, [&](unsigned x, unsigned y, int t) {
        static uint8_t codes[G]; // the threadgroup buffer the host binds
        kernel_xq_set_rows<G>(args, (const char *) rows, (const char *) idxs, (const char *) (base ? base : rows), (char *) dst, codes, uint2{ x, y }, (ushort) t);
    });
#endif
}

template <int G>
static void launch_load(const uint8_t * stored, int64_t n, int64_t n_kv, const float * base, float * dst, int bits) {
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
#if defined(XQ_EMULATE_CUDA)
    emu_launch((unsigned) n_kv, (unsigned) (n / G), 32, [&](unsigned x, unsigned y, int t) {
        blockIdx = { x, y, 0 };
        threadIdx = { (unsigned) t, 0, 0 };
        k_xq_load<G>(stored, row_bytes, (const char *) base, n * sizeof(float), (char *) dst, n * sizeof(float), bits);
    });
#else
    ggml_metal_kargs_xq_rebuild args = { bits, (int32_t) n, (int32_t) n, (int32_t) n_kv, 0, base != nullptr, row_bytes, 0, (uint64_t) (n * sizeof(float)), (uint64_t) (n * sizeof(float)) };
    emu_launch((unsigned) n_kv, (unsigned) (n / G), 32, [&](unsigned x, unsigned y, int t) {
        kernel_xq_load<G>(args, (const char *) stored, (const char *) (base ? base : dst), (char *) dst, uint2{ x, y }, (ushort) t);
    });
#endif
}

template <int G, typename TW>
static void launch_rebuild(const uint8_t * stored, int64_t n, int64_t n_kv, const TW * w, int64_t n_out, const float * bias, float * dst, int bits) {
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
    const unsigned n_x = (unsigned) ((n_out + XQ_TILE_O - 1) / XQ_TILE_O);
    const unsigned n_y = (unsigned) ((n_kv + XQ_TILE_J - 1) / XQ_TILE_J);
#if defined(XQ_EMULATE_CUDA)
    emu_launch(n_x, n_y, XQ_THREADS, [&](unsigned x, unsigned y, int t) {
        blockIdx = { x, y, 0 };
        threadIdx = { (unsigned) t, 0, 0 };
        k_xq_rebuild<G, TW>(stored, row_bytes, w, n, bias, dst, n_out * sizeof(float), n, n_out, n_kv, bits);
    });
#else
    ggml_metal_kargs_xq_rebuild args = { bits, (int32_t) n, (int32_t) n_out, (int32_t) n_kv, bias != nullptr, 0, row_bytes, (uint64_t) n, (uint64_t) (n_out * sizeof(float)), 0 };
    emu_launch(n_x, n_y, XQ_THREADS, [&](unsigned x, unsigned y, int t) {
        kernel_xq_rebuild<G, TW>(args, (const char *) stored, (const char *) w, (const char *) (bias ? bias : dst), (char *) dst, uint2{ x, y }, (ushort) t, (ushort) (t % 32), (ushort) (t / 32));
    });
#endif
}

struct totals {
    int cases = 0;
    int set_rows_row_mismatches = 0;
    double load_max_abs = 0.0;
    double rebuild_nmse_max = 0.0;
};

template <int G>
static void run_case(totals & r, int bits, int64_t n, int64_t n_cells, int64_t n_out, bool f16_w, bool with_extra, std::mt19937 & rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const size_t row_bytes = ggml_xq_row_bytes(n, bits);
    std::vector<float> rows(n * n_cells), base(n * n_cells), w(n * n_out), bias(n_out);
    for (auto * v : { &rows, &base, &w, &bias }) for (float & x : *v) x = dist(rng);
    std::vector<half> w16(w.begin(), w.end());
    if (f16_w) for (size_t i = 0; i < w.size(); ++i) w[i] = (float) w16[i];
    std::vector<int64_t> idxs(n_cells);
    for (int64_t i = 0; i < n_cells; ++i) idxs[i] = (i * 7 + 3) % n_cells; // n_cells is odd and not a multiple of 7: a permutation
    const float * base_or_null = with_extra ? base.data() : nullptr;

    // set_rows (a delta against base where asked) against the row function
    std::vector<uint8_t> stored(row_bytes * n_cells, 0), expect(row_bytes * n_cells);
    launch_set_rows<G>(rows.data(), n, n_cells, idxs.data(), base_or_null, stored.data(), bits);
    std::vector<float> delta(n), x_hat(n);
    for (int64_t t = 0; t < n_cells; ++t) {
        const int64_t cell = idxs[t];
        for (int64_t i = 0; i < n; ++i) delta[i] = rows[t * n + i] - (with_extra ? base[cell * n + i] : 0.0f);
        ggml_xq_quantize_row(delta.data(), expect.data() + cell * row_bytes, n, bits);
        r.set_rows_row_mismatches += std::memcmp(expect.data() + cell * row_bytes, stored.data() + cell * row_bytes, row_bytes) != 0;
    }

    // load (+ base) from the reference bytes
    std::vector<float> loaded(n * n_cells);
    launch_load<G>(expect.data(), n, n_cells, base_or_null, loaded.data(), bits);
    std::vector<double> x_ref(n * n_cells);
    for (int64_t cell = 0; cell < n_cells; ++cell) {
        ggml_xq_dequantize_row(expect.data() + cell * row_bytes, x_hat.data(), n, bits);
        for (int64_t i = 0; i < n; ++i) {
            x_ref[cell * n + i] = x_hat[i];
            const double want = (double) x_hat[i] + (with_extra ? base[cell * n + i] : 0.0f);
            r.load_max_abs = std::max(r.load_max_abs, std::fabs(want - loaded[cell * n + i]));
        }
    }

    // fused rebuild (+ bias) against W·X̂ in double precision
    std::vector<float> out(n_out * n_cells);
    const float * bias_or_null = with_extra ? bias.data() : nullptr;
    if (f16_w) launch_rebuild<G, half>(expect.data(), n, n_cells, w16.data(), n_out, bias_or_null, out.data(), bits);
    else       launch_rebuild<G, float>(expect.data(), n, n_cells, w.data(), n_out, bias_or_null, out.data(), bits);
    double num = 0.0, den = 0.0;
    for (int64_t j = 0; j < n_cells; ++j) {
        for (int64_t o = 0; o < n_out; ++o) {
            double want = with_extra ? bias[o] : 0.0;
            for (int64_t i = 0; i < n; ++i) want += (double) w[o * n + i] * x_ref[j * n + i];
            num += (want - out[j * n_out + o]) * (want - out[j * n_out + o]);
            den += want * want;
        }
    }
    r.rebuild_nmse_max = std::max(r.rebuild_nmse_max, num / den);
    r.cases++;
}

int main() {
    std::mt19937 rng(99);
    totals r;
    for (int bits : { 2, 3, 4, 8, 16 }) {
        for (bool with_extra : { false, true }) {
            run_case<128>(r, bits, 256, 37, 48, with_extra, with_extra, rng);
            run_case<32>(r, bits, 96, 19, 40, !with_extra, with_extra, rng);
            run_case<64>(r, bits, 64, 5, 33, with_extra, with_extra, rng);
        }
    }
    std::printf("{\"cases\": %d, \"setRowsRowMismatches\": %d, \"loadMaxAbs\": %.3e, \"rebuildNmseMax\": %.3e}\n",
        r.cases, r.set_rows_row_mismatches, r.load_max_abs, r.rebuild_nmse_max);
    return 0;
}
