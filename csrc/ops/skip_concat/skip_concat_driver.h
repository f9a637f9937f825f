// The device-independent part of the padded skip-concat: input checks, the output's shape, and
// one copy per input into (or, backward, out of) its channel slice. The copies come from a Runner:
//   static constexpr c10::DeviceType kDevice;
//   void copy(const skip_concat::Slice&, const at::Tensor& dense, const at::Tensor& padded,
//             bool to_dense);
// which writes `dense` (contiguous) into its slice of `padded` (contiguous), zeroing the slice's
// padding, or with `to_dense` reads the slice back into `dense`.
// (skip_concat_cpu.cpp: parallel row copies; skip_concat_cuda.cu: one CUDA thread per element.)
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/DeviceType.h>

#include <algorithm>
#include <vector>

#include "ops/skip_concat/skip_concat_index.h"

namespace pynas {
namespace skip_concat {

inline void check_inputs(const at::TensorList& inputs, c10::DeviceType kernel_device) {
  TORCH_CHECK(!inputs.empty(), "pynas::skip_concat: expected at least one input tensor, got none");
  const auto& first = inputs[0];
  TORCH_CHECK(first.device().type() == kernel_device, "pynas::skip_concat: input 0 is on ",
              first.device(), "; this kernel runs on ",
              c10::DeviceTypeName(kernel_device, /*lower_case=*/true));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& t = inputs[i];
    TORCH_CHECK(t.dim() == 4, "pynas::skip_concat: input ", i, " must be 4-D (N, C, H, W), got ",
                t.dim(), "-D with shape ", t.sizes());
    TORCH_CHECK(t.device() == first.device(), "pynas::skip_concat: input ", i, " is on ",
                t.device(), " but input 0 is on ", first.device(),
                "; move all inputs to one device");
    TORCH_CHECK(t.scalar_type() == first.scalar_type(), "pynas::skip_concat: input ", i,
                " has dtype ", t.scalar_type(), " but input 0 has ", first.scalar_type(),
                "; cast all inputs to one dtype");
    TORCH_CHECK(t.size(0) == first.size(0), "pynas::skip_concat: input ", i, " has batch size ",
                t.size(0), " but input 0 has ", first.size(0));
  }
}

inline Slice make_slice(at::IntArrayRef dense, const at::Tensor& padded, int64_t offset) {
  return {dense[0], dense[1], dense[2], dense[3],
          padded.size(1), padded.size(2), padded.size(3), offset};
}

template <typename Runner>
at::Tensor forward_impl(Runner& runner, at::TensorList inputs) {
  check_inputs(inputs, Runner::kDevice);
  int64_t channels = 0, height = 0, width = 0;
  for (const auto& t : inputs) {
    channels += t.size(1);
    height = std::max(height, t.size(2));
    width = std::max(width, t.size(3));
  }
  // Every element is written by a copy: data, or the zeros of a plane's padding.
  auto out = at::empty({inputs[0].size(0), channels, height, width}, inputs[0].options());
  int64_t offset = 0;
  for (const auto& t : inputs) {
    const at::Tensor dense = t.contiguous();
    runner.copy(make_slice(dense.sizes(), out, offset), dense, out, /*to_dense=*/false);
    offset += t.size(1);
  }
  return out;
}

template <typename Runner>
std::vector<at::Tensor> backward_impl(Runner& runner, const at::Tensor& grad,
                                      at::IntArrayRef channels, at::IntArrayRef heights,
                                      at::IntArrayRef widths) {
  constexpr const char* op = "pynas::_skip_concat_backward";
  TORCH_CHECK(channels.size() == heights.size() && heights.size() == widths.size(), op,
              ": channels, heights and widths must have one entry per input");
  TORCH_CHECK(grad.dim() == 4, op, ": grad must be 4-D, got ", grad.sizes());
  TORCH_CHECK(grad.device().type() == Runner::kDevice, op, ": grad is on ", grad.device(),
              "; this kernel runs on ", c10::DeviceTypeName(Runner::kDevice, true));
  const at::Tensor g = grad.contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(channels.size());
  int64_t offset = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    TORCH_CHECK(channels[i] >= 0 && heights[i] >= 0 && widths[i] >= 0 &&
                    offset + channels[i] <= g.size(1) && heights[i] <= g.size(2) &&
                    widths[i] <= g.size(3),
                op, ": input ", i, " does not fit in grad of shape ", g.sizes());
    auto gi = at::empty({g.size(0), channels[i], heights[i], widths[i]}, g.options());
    runner.copy(make_slice(gi.sizes(), g, offset), gi, g, /*to_dense=*/true);
    grads.push_back(gi);
    offset += channels[i];
  }
  return grads;
}

}  // namespace skip_concat
}  // namespace pynas
