// Just enough of the Metal Shading Language for a host C++20 compiler to parse and
// run our kernels on the emulator (emulate.h): address spaces become nothing,
// half is _Float16, simdgroup functions go through the emulated warp.
// The test makes threadgroup arrays declared inside a kernel static.
// This catches C++-level errors and wrong results, not Metal-specific errors.
#pragma once
#include "emulate.h"
#include "ggml-metal-impl.h"
#include <cfloat>

#define kernel
#define device
#define constant
#define threadgroup
#define thread
typedef _Float16 half;
typedef unsigned short ushort;
typedef unsigned int uint;
struct uint2 { uint x, y; };
using std::min; using std::max; using std::rint; using std::sqrt; using std::exp;
namespace precise { using std::cos; using std::sin; }
inline float clamp(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
#define FOR_UNROLL(x) for (x)

namespace mem_flags { enum { mem_none = 0, mem_threadgroup = 1, mem_device = 2 }; }
inline void simdgroup_barrier(int) { emu_warp_sync(); }
inline void threadgroup_barrier(int) { emu_block_sync(); }
template <class T> T simd_shuffle_xor(T v, ushort mask) { return emu_shuffle_xor(v, mask); }
inline float simd_min(float v) { return emu_warp_reduce(v, [](float a, float b) { return std::min(a, b); }); }
inline float simd_max(float v) { return emu_warp_reduce(v, [](float a, float b) { return std::max(a, b); }); }
