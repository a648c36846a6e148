// Just enough of the Metal Shading Language for a host C++20 compiler to parse and
// run our kernels (native/tests/gpu-compile.test.ts, on machines without Metal):
// address spaces become nothing, half is _Float16, and the simdgroup and
// threadgroup functions are emulated with one host thread per GPU thread
// (metal-emulate.cpp launches them). Threadgroup arrays declared inside a kernel
// are made static by the test, so threadgroups must run one at a time.
// This catches C++-level errors and wrong results, not Metal-specific errors.
#pragma once
// every standard header first: the address-space macros below would break them
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
#include "ggml-metal-impl.h"

using msl_host_thread = std::thread; // `thread` is an address space below

#define kernel
#define device
#define constant
#define threadgroup
#define thread
typedef _Float16 half;
typedef unsigned short ushort;
typedef unsigned int uint;
struct uint2 { uint x, y; };
using std::min; using std::max; using std::rint; using std::sqrt;
inline float clamp(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
#define FOR_UNROLL(x) for (x)

// the emulated GPU: one host thread per GPU thread of the running threadgroup
struct msl_simdgroup {
    std::barrier<> sync{32};
    float slots[32];
};
struct msl_threadgroup {
    explicit msl_threadgroup(int n_threads) : sync(n_threads) {}
    std::barrier<> sync;
};
inline thread_local msl_simdgroup * msl_sg = nullptr;
inline thread_local msl_threadgroup * msl_tg = nullptr;
inline thread_local int msl_lane = 0;

namespace mem_flags { enum { mem_none = 0, mem_threadgroup = 1, mem_device = 2 }; }
inline void simdgroup_barrier(int) { msl_sg->sync.arrive_and_wait(); }
inline void threadgroup_barrier(int) { msl_tg->sync.arrive_and_wait(); }

template <class T> T simd_shuffle_xor(T v, ushort mask) {
    msl_sg->slots[msl_lane] = (float) v;
    msl_sg->sync.arrive_and_wait();
    const T other = (T) msl_sg->slots[msl_lane ^ mask];
    msl_sg->sync.arrive_and_wait();
    return other;
}
template <class F> float msl_simd_reduce(float v, F op) {
    msl_sg->slots[msl_lane] = v;
    msl_sg->sync.arrive_and_wait();
    float r = msl_sg->slots[0];
    for (int i = 1; i < 32; ++i) r = op(r, msl_sg->slots[i]);
    msl_sg->sync.arrive_and_wait();
    return r;
}
inline float simd_min(float v) { return msl_simd_reduce(v, [](float a, float b) { return std::min(a, b); }); }
inline float simd_max(float v) { return msl_simd_reduce(v, [](float a, float b) { return std::max(a, b); }); }
