// Just enough of CUDA for a host C++20 compiler to run our device code
// (ggml-cuda/xquant-kernels.cuh) on the emulator (emulate.h): __shared__ arrays
// become static (blocks run one at a time), threadIdx/blockIdx are per host thread,
// warp shuffles and barriers go through the emulated warp and block.
#pragma once
#include "emulate.h"
#include <math.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
typedef _Float16 half;
using std::min; using std::max;
inline float __half2float(half h) { return (float) h; }
inline half __float2half(float f) { return (half) f; }
// round-to-nearest arithmetic that nvcc never fuses; the host compiler here does not fuse either
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }

struct emu_dim3 { unsigned x, y, z; };
inline thread_local emu_dim3 threadIdx;
inline thread_local emu_dim3 blockIdx;

template <class T> T __shfl_xor_sync(unsigned, T v, int mask, int = 32) { return emu_shuffle_xor(v, mask); }
inline void __syncwarp() { emu_warp_sync(); }
inline void __syncthreads() { emu_block_sync(); }
