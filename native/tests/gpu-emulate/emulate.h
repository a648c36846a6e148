// A tiny GPU emulator for kernel tests on machines without a GPU: one host thread
// per GPU thread, one block (threadgroup) at a time, warps (simdgroups) of 32 that
// exchange values through a barrier. Slow, but it runs the kernels' own code.
// Used by cuda-shim.h and metal-shim.h (native/tests/gpu-compile.test.ts).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

struct emu_warp {
    std::barrier<> sync{32};
    float slots[32];
};

struct emu_block {
    explicit emu_block(int n_threads) : sync(n_threads) {}
    std::barrier<> sync;
};

inline thread_local emu_warp * emu_cur_warp = nullptr;
inline thread_local emu_block * emu_cur_block = nullptr;
inline thread_local int emu_lane = 0;

inline void emu_warp_sync() { emu_cur_warp->sync.arrive_and_wait(); }
inline void emu_block_sync() { emu_cur_block->sync.arrive_and_wait(); }

template <class T> T emu_shuffle_xor(T v, int mask) {
    emu_cur_warp->slots[emu_lane] = (float) v;
    emu_warp_sync();
    const T other = (T) emu_cur_warp->slots[emu_lane ^ mask];
    emu_warp_sync();
    return other;
}

template <class F> float emu_warp_reduce(float v, F op) {
    emu_cur_warp->slots[emu_lane] = v;
    emu_warp_sync();
    float r = emu_cur_warp->slots[0];
    for (int i = 1; i < 32; ++i) r = op(r, emu_cur_warp->slots[i]);
    emu_warp_sync();
    return r;
}

// body(x, y, tid) on every thread of every block of an n_x × n_y grid
template <class F> void emu_launch(unsigned n_x, unsigned n_y, int n_threads, F body) {
    for (unsigned y = 0; y < n_y; ++y) {
        for (unsigned x = 0; x < n_x; ++x) {
            emu_block block(n_threads);
            std::unique_ptr<emu_warp[]> warps(new emu_warp[n_threads / 32]);
            std::vector<std::thread> workers;
            for (int t = 0; t < n_threads; ++t) {
                workers.emplace_back([&, t] {
                    emu_cur_warp = &warps[t / 32];
                    emu_cur_block = &block;
                    emu_lane = t % 32;
                    body(x, y, t);
                });
            }
            for (auto & worker : workers) worker.join();
        }
    }
}
