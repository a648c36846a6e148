// Just enough of the Metal Shading Language for a host C++ compiler to parse our
// kernels (native/tests/gpu-compile.test.ts, on machines without Metal): address
// spaces become nothing, half is _Float16, simd functions are declared only.
// It catches syntax, name and type errors, not Metal-specific ones.
#pragma once
#include <cstdint>
#include <cmath>
#include "ggml-metal-impl.h"
#define kernel
#define device
#define constant
#define threadgroup
#define thread
typedef _Float16 half;
typedef unsigned short ushort;
typedef unsigned int uint;
struct uint2 { uint x, y; };
template <class T> T simd_shuffle_xor(T v, ushort m);
float simd_min(float);
float simd_max(float);
namespace mem_flags { enum { mem_threadgroup = 0 }; }
void simdgroup_barrier(int);
void threadgroup_barrier(int);
inline float clamp(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
using std::min; using std::max; using std::rint; using std::sqrt;
#define FOR_UNROLL(x) for (x)
