// Padded skip-concat on CUDA: per input one kernel with a thread per element of its channel
// slice, using the index math of skip_concat_index.h (the CPU kernel's too). The checks and the
// loop over inputs are shared with the CPU kernel through skip_concat_driver.h. Elements are
// moved as raw words of the dtype's size, as the CPU kernel moves bytes: every dtype works, and
// padding is the all-zero bit pattern (+0.0 for floating types). Compiled only when CMake finds
// a CUDA compiler AND torch is a CUDA build.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <vector>

#include "ops/skip_concat/skip_concat_driver.h"
#include "ops/skip_concat/skip_concat_index.h"

namespace pynas {
namespace {

namespace sc = ::pynas::skip_concat;

constexpr int kThreads = 256;

struct alignas(16) Word16 {
  uint64_t lo, hi;
};

// Forward: one thread per element of the input's slice of the output, [N, C, H_max, W_max].
template <typename W>
__global__ void pad_into_kernel(sc::Slice s, const W* __restrict__ dense, W* __restrict__ out) {
  const int64_t n = s.batch * s.channels * s.out_height * s.out_width;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const sc::Coords k = sc::unravel(i, s.channels, s.out_height, s.out_width);
    out[sc::padded_index(s, k.b, k.c, k.y, k.x)] =
        sc::holds_data(s, k.y, k.x) ? dense[sc::dense_index(s, k.b, k.c, k.y, k.x)] : W{};
  }
}

// Backward: one thread per element of the input, [N, C, H, W], read out of the output's grad.
template <typename W>
__global__ void slice_out_kernel(sc::Slice s, W* __restrict__ dense, const W* __restrict__ padded) {
  const int64_t n = s.batch * s.channels * s.height * s.width;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const sc::Coords k = sc::unravel(i, s.channels, s.height, s.width);
    dense[sc::dense_index(s, k.b, k.c, k.y, k.x)] = padded[sc::padded_index(s, k.b, k.c, k.y, k.x)];
  }
}

unsigned int blocks_for(int64_t n) {
  constexpr int64_t kMaxBlocks = 65535;  // the grid-stride loops cover the rest
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <typename W>
void launch(const sc::Slice& s, const at::Tensor& dense, const at::Tensor& padded, bool to_dense) {
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (to_dense) {
    const int64_t n = s.batch * s.channels * s.height * s.width;
    if (n == 0) return;
    slice_out_kernel<W><<<blocks_for(n), kThreads, 0, stream>>>(
        s, static_cast<W*>(dense.data_ptr()), static_cast<const W*>(padded.data_ptr()));
  } else {
    const int64_t n = s.batch * s.channels * s.out_height * s.out_width;
    if (n == 0) return;
    pad_into_kernel<W><<<blocks_for(n), kThreads, 0, stream>>>(
        s, static_cast<const W*>(dense.data_ptr()), static_cast<W*>(padded.data_ptr()));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

struct CudaRunner {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;

  // Called after the driver's checks, so `padded` is on a CUDA device here.
  void copy(const sc::Slice& s, const at::Tensor& dense, const at::Tensor& padded, bool to_dense) {
    const c10::cuda::CUDAGuard guard(padded.device());
    switch (dense.element_size()) {
      case 1:
        return launch<uint8_t>(s, dense, padded, to_dense);
      case 2:
        return launch<uint16_t>(s, dense, padded, to_dense);
      case 4:
        return launch<uint32_t>(s, dense, padded, to_dense);
      case 8:
        return launch<uint64_t>(s, dense, padded, to_dense);
      case 16:
        return launch<Word16>(s, dense, padded, to_dense);
      default:
        TORCH_CHECK(false, "pynas::skip_concat: unsupported element size ", dense.element_size(),
                    " bytes (dtype ", dense.scalar_type(), ")");
    }
  }
};

at::Tensor skip_concat_cuda(at::TensorList inputs) {
  CudaRunner runner;
  return sc::forward_impl(runner, inputs);
}

std::vector<at::Tensor> skip_concat_backward_cuda(const at::Tensor& grad, at::IntArrayRef channels,
                                                  at::IntArrayRef heights,
                                                  at::IntArrayRef widths) {
  CudaRunner runner;
  return sc::backward_impl(runner, grad, channels, heights, widths);
}

}  // namespace

TORCH_LIBRARY_IMPL(pynas, CUDA, m) {
  m.impl("skip_concat", &skip_concat_cuda);
  m.impl("_skip_concat_backward", &skip_concat_backward_cuda);
}

}  // namespace pynas
