// Index math of the padded skip-concat, shared by the CPU kernel (skip_concat_cpu.cpp) and the
// CUDA kernel (skip_concat_cuda.cu): plain integer arithmetic, __host__ __device__ under nvcc.
//
// Input k, dense [N, C_k, H_k, W_k] (contiguous), lands in the output [N, C_total, H_max, W_max]
// (contiguous) at channels [offset_k, offset_k + C_k), top-left aligned: element (b, c, y, x)
// goes to (b, offset_k + c, y, x); the rest of those planes (rows y >= H_k, columns x >= W_k) is
// zero padding. The backward reads the same positions back out of the output's gradient.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYNAS_SC_HD __host__ __device__ __forceinline__
#else
#define PYNAS_SC_HD inline
#endif

namespace pynas {
namespace skip_concat {

// Where one input sits in the output.
struct Slice {
  int64_t batch, channels, height, width;          // the dense input [N, C, H, W]
  int64_t out_channels, out_height, out_width;     // the output [N, C_total, H_max, W_max]
  int64_t channel_offset;                          // first output channel of this input
};

// Element (b, c, y, x) of the dense input.
PYNAS_SC_HD int64_t dense_index(const Slice& s, int64_t b, int64_t c, int64_t y, int64_t x) {
  return ((b * s.channels + c) * s.height + y) * s.width + x;
}

// Element (b, c, y, x) of the input, or of its plane's padding, in the output.
PYNAS_SC_HD int64_t padded_index(const Slice& s, int64_t b, int64_t c, int64_t y, int64_t x) {
  return ((b * s.out_channels + s.channel_offset + c) * s.out_height + y) * s.out_width + x;
}

// Whether output position (y, x) of one of the input's planes holds data (else padding).
PYNAS_SC_HD bool holds_data(const Slice& s, int64_t y, int64_t x) {
  return y < s.height && x < s.width;
}

// Coordinates (b, c, y, x) of linear index i over a [N, C, rows, cols] region.
struct Coords {
  int64_t b, c, y, x;
};

PYNAS_SC_HD Coords unravel(int64_t i, int64_t channels, int64_t rows, int64_t cols) {
  Coords k;
  k.x = i % cols;
  i /= cols;
  k.y = i % rows;
  i /= rows;
  k.c = i % channels;
  k.b = i / channels;
  return k;
}

}  // namespace skip_concat
}  // namespace pynas
