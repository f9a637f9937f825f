// Padded skip-concat on the CPU: one parallel pass of row copies per input, no intermediate
// padded tensors. The checks and the loop over inputs are in skip_concat_driver.h, the index math
// (shared with the CUDA kernel) in skip_concat_index.h.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/skip_concat/skip_concat_driver.h"
#include "ops/skip_concat/skip_concat_index.h"

namespace pynas {
namespace {

using skip_concat::dense_index;
using skip_concat::padded_index;
using skip_concat::Slice;

struct CpuRunner {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;

  // Work is split by (image, channel) plane. A plane of the full size is one contiguous copy; a
  // smaller one is copied row by row. Writing into `padded`, the plane's padding (the tail of
  // each row and the rows below) is zeroed here, so the output needs no zero-fill first.
  void copy(const Slice& s, const at::Tensor& dense, const at::Tensor& padded, bool to_dense) {
    const int64_t elem = dense.element_size();
    auto* dense_ptr = static_cast<char*>(dense.data_ptr());
    auto* padded_ptr = static_cast<char*>(padded.data_ptr());
    const int64_t planes = s.batch * s.channels;
    if (planes == 0 || s.out_height == 0 || s.out_width == 0) return;
    const int64_t h = s.height, w = s.width, wp = s.out_width;
    const bool full = h == s.out_height && w == wp;
    const int64_t plane_bytes = s.out_height * wp * elem;
    at::parallel_for(0, planes, 65536 / std::max<int64_t>(plane_bytes, 1) + 1,
                     [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / s.channels, c = p % s.channels;
        char* d = dense_ptr + dense_index(s, b, c, 0, 0) * elem;
        char* q = padded_ptr + padded_index(s, b, c, 0, 0) * elem;
        if (full) {
          if (to_dense) {
            std::memcpy(d, q, plane_bytes);
          } else {
            std::memcpy(q, d, plane_bytes);
          }
          continue;
        }
        for (int64_t y = 0; y < h; ++y) {
          char* row = padded_ptr + padded_index(s, b, c, y, 0) * elem;
          char* src = dense_ptr + dense_index(s, b, c, y, 0) * elem;
          if (to_dense) {
            std::memcpy(src, row, w * elem);
          } else {
            std::memcpy(row, src, w * elem);
            std::memset(row + w * elem, 0, (wp - w) * elem);
          }
        }
        if (!to_dense) {  // the rows below the input's
          char* below = padded_ptr + padded_index(s, b, c, h, 0) * elem;
          std::memset(below, 0, (s.out_height - h) * wp * elem);
        }
      }
    });
  }
};

at::Tensor skip_concat_cpu(at::TensorList inputs) {
  CpuRunner runner;
  return skip_concat::forward_impl(runner, inputs);
}

std::vector<at::Tensor> skip_concat_backward_cpu(const at::Tensor& grad, at::IntArrayRef channels,
                                                 at::IntArrayRef heights, at::IntArrayRef widths) {
  CpuRunner runner;
  return skip_concat::backward_impl(runner, grad, channels, heights, widths);
}

}  // namespace

TORCH_LIBRARY_IMPL(pynas, CPU, m) {
  m.impl("skip_concat", &skip_concat_cpu);
  m.impl("_skip_concat_backward", &skip_concat_backward_cpu);
}

}  // namespace pynas
