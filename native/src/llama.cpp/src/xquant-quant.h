#pragma once

#include <cstddef>
#include <cstdint>

// The X-cache row format (XQuant, Tomar et al. 2025, §2 of docs/XQUANT.md):
// asymmetric uniform quantization per token over groups of channels, each group
// Hadamard-rotated first and stored as [fp16 scale][fp16 min][packed codes].
// bits = 16 stores X as raw fp16. See native/README.md for the measurements.
//
//   bits  group 128 bytes   bits per element
//     8        4 + 128          8.25
//     4        4 +  64          4.25
//     3        4 +  48          3.25
//     2        4 +  32          2.25

constexpr int XQ_GROUP_MAX = 128;

// The group width for a row of n_embd channels: 128 where it divides, else 64 or 32.
int xq_group_size(int64_t n_embd);

// Bytes of one stored row of n_embd channels at the given bits (2, 3, 4, 8 or 16).
size_t xq_row_bytes(int64_t n_embd, int bits);

bool xq_bits_supported(int bits);

// In-place normalised Walsh-Hadamard transform of n values (n a power of two);
// its own inverse. The row format rotates each group with it.
void xq_hadamard(float * x, int n);

// Quantize one row of n_embd floats into dst (xq_row_bytes bytes).
void xq_quantize_row(const float * src, uint8_t * dst, int64_t n_embd, int bits);

// Dequantize one stored row back into n_embd floats.
void xq_dequantize_row(const uint8_t * src, float * dst, int64_t n_embd, int bits);
