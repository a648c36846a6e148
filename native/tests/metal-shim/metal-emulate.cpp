// Runs our Metal kernels (kernels/xquant.metal) on the CPU through metal-shim.h,
// one host thread per GPU thread, and compares them with the row format's own
// functions (ggml-xquant.h): set_rows must store the same bytes, load the same
// values, and the fused rebuild must match a double-precision reference.
// Built and run by native/tests/gpu-compile.test.ts; prints one JSON object.
// The CUDA kernels (ggml-cuda/xquant.cu) have the same structure.
#include "metal-shim.h"
#include "xquant-metal.inc" // kernels/xquant.metal, prepared by the test
#include "ggml-xquant.h"


// body(tgpig, tid, lane, warp) on every thread of every threadgroup, one threadgroup at a time
template <class F>
static void launch(uint n_x, uint n_y, int n_threads, F body) {
    for (uint y = 0; y < n_y; ++y) {
        for (uint x = 0; x < n_x; ++x) {
            msl_threadgroup tg(n_threads);
            std::unique_ptr<msl_simdgroup[]> sgs(new msl_simdgroup[n_threads / 32]);
            std::vector<msl_host_thread> threads;
            for (int t = 0; t < n_threads; ++t) {
                threads.emplace_back([&, t] {
                    msl_sg = &sgs[t / 32];
                    msl_tg = &tg;
                    msl_lane = t % 32;
                    body(uint2{ x, y }, (ushort) t, (ushort) (t % 32), (ushort) (t / 32));
                });
            }
            for (auto & worker : threads) worker.join();
        }
    }
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
    for (int64_t i = 0; i < n_cells; ++i) idxs[i] = (i * 7 + 3) % n_cells; // n_cells is odd: a permutation

    // set_rows, with base as a delta where asked
    std::vector<uint8_t> stored(row_bytes * n_cells, 0), expect(row_bytes * n_cells);
    ggml_metal_kargs_xq_set_rows sargs = { bits, 1, with_extra, row_bytes, (uint64_t) (n * sizeof(float)), (uint64_t) (n * sizeof(float)) };
    launch((uint) n_cells, (uint) (n / G), 32, [&](uint2 tgpig, ushort, ushort lane, ushort) {
        static uint8_t codes[G];
        kernel_xq_set_rows<G>(sargs, (const char *) rows.data(), (const char *) idxs.data(), (const char *) base.data(), (char *) stored.data(), codes, tgpig, lane);
    });
    std::vector<float> delta(n), x_hat(n);
    for (int64_t t = 0; t < n_cells; ++t) {
        const int64_t cell = idxs[t];
        for (int64_t i = 0; i < n; ++i) delta[i] = rows[t * n + i] - (with_extra ? base[cell * n + i] : 0.0f);
        ggml_xq_quantize_row(delta.data(), expect.data() + cell * row_bytes, n, bits);
        r.set_rows_row_mismatches += std::memcmp(expect.data() + cell * row_bytes, stored.data() + cell * row_bytes, row_bytes) != 0;
    }

    // load (+ base), from the reference bytes
    std::vector<float> loaded(n * n_cells);
    ggml_metal_kargs_xq_rebuild largs = { bits, (int32_t) n, (int32_t) n, (int32_t) n_cells, 0, with_extra, row_bytes, 0, (uint64_t) (n * sizeof(float)), (uint64_t) (n * sizeof(float)) };
    launch((uint) n_cells, (uint) (n / G), 32, [&](uint2 tgpig, ushort, ushort lane, ushort) {
        kernel_xq_load<G>(largs, (const char *) expect.data(), (const char *) base.data(), (char *) loaded.data(), tgpig, lane);
    });
    std::vector<double> x_ref(n * n_cells);
    for (int64_t cell = 0; cell < n_cells; ++cell) {
        ggml_xq_dequantize_row(expect.data() + cell * row_bytes, x_hat.data(), n, bits);
        for (int64_t i = 0; i < n; ++i) {
            x_ref[cell * n + i] = x_hat[i];
            const double want = (double) x_hat[i] + (with_extra ? base[cell * n + i] : 0.0f);
            r.load_max_abs = std::max(r.load_max_abs, std::fabs(want - loaded[cell * n + i]));
        }
    }

    // fused rebuild (+ bias)
    std::vector<float> out(n_out * n_cells);
    ggml_metal_kargs_xq_rebuild rargs = { bits, (int32_t) n, (int32_t) n_out, (int32_t) n_cells, with_extra, 0, row_bytes, (uint64_t) n, (uint64_t) (n_out * sizeof(float)), 0 };
    launch((uint) ((n_out + XQ_TILE_O - 1) / XQ_TILE_O), (uint) ((n_cells + XQ_TILE_J - 1) / XQ_TILE_J), XQ_THREADS, [&](uint2 tgpig, ushort tid, ushort lane, ushort warp) {
        const char * wp = f16_w ? (const char *) w16.data() : (const char *) w.data();
        if (f16_w) {
            kernel_xq_rebuild<G, half>(rargs, (const char *) expect.data(), wp, (const char *) bias.data(), (char *) out.data(), tgpig, tid, lane, warp);
        } else {
            kernel_xq_rebuild<G, float>(rargs, (const char *) expect.data(), wp, (const char *) bias.data(), (char *) out.data(), tgpig, tid, lane, warp);
        }
    });
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
