// Padded skip-concat on the CPU: one parallel pass of row copies, no intermediate padded tensors.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace pynas {
namespace {

void check_inputs(const at::TensorList& inputs) {
  TORCH_CHECK(!inputs.empty(), "pynas::skip_concat: expected at least one input tensor, got none");
  const auto& first = inputs[0];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& t = inputs[i];
    TORCH_CHECK(t.dim() == 4, "pynas::skip_concat: input ", i, " must be 4-D (N, C, H, W), got ",
                t.dim(), "-D with shape ", t.sizes());
    TORCH_CHECK(t.device().is_cpu(), "pynas::skip_concat: input ", i, " is on ", t.device(),
                "; this kernel runs on the CPU");
    TORCH_CHECK(t.scalar_type() == first.scalar_type(), "pynas::skip_concat: input ", i,
                " has dtype ", t.scalar_type(), " but input 0 has ", first.scalar_type(),
                "; cast all inputs to one dtype");
    TORCH_CHECK(t.size(0) == first.size(0), "pynas::skip_concat: input ", i, " has batch size ",
                t.size(0), " but input 0 has ", first.size(0));
  }
}

// Copies `dense` [N, C, H, W] (contiguous) into the channel slice of `padded` [N, Ctot, Hp, Wp]
// starting at channel `offset`, top-left aligned, or (with `to_dense`) the slice back out.
// Work is split by (image, channel) plane. A plane of the full size is one contiguous copy;
// a smaller one is copied row by row. Writing into `padded`, the plane's padding (the tail
// of each row and the rows below) is zeroed here, so the output needs no zero-fill first.
void copy_block(const at::Tensor& dense, const at::Tensor& padded, int64_t offset, bool to_dense) {
  const int64_t n = dense.size(0), c = dense.size(1), h = dense.size(2), w = dense.size(3);
  const int64_t ctot = padded.size(1), hp = padded.size(2), wp = padded.size(3);
  const int64_t elem = dense.element_size();
  auto* dense_ptr = static_cast<char*>(dense.data_ptr());
  auto* padded_ptr = static_cast<char*>(padded.data_ptr());
  const int64_t planes = n * c;
  if (planes == 0 || hp == 0 || wp == 0) return;
  const bool full = h == hp && w == wp;
  const int64_t plane_bytes = hp * wp * elem;
  at::parallel_for(0, planes, 65536 / std::max<int64_t>(plane_bytes, 1) + 1,
                   [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / c, ch = p % c;
      char* d = dense_ptr + p * h * w * elem;
      char* q = padded_ptr + ((b * ctot + offset + ch) * hp * wp) * elem;
      if (full) {
        if (to_dense) {
          std::memcpy(d, q, plane_bytes);
        } else {
          std::memcpy(q, d, plane_bytes);
        }
        continue;
      }
      for (int64_t y = 0; y < h; ++y) {
        char* row = q + y * wp * elem;
        if (to_dense) {
          std::memcpy(d + y * w * elem, row, w * elem);
        } else {
          std::memcpy(row, d + y * w * elem, w * elem);
          std::memset(row + w * elem, 0, (wp - w) * elem);
        }
      }
      if (!to_dense) std::memset(q + h * wp * elem, 0, (hp - h) * wp * elem);
    }
  });
}

at::Tensor skip_concat_cpu(at::TensorList inputs) {
  check_inputs(inputs);
  int64_t channels = 0, height = 0, width = 0;
  for (const auto& t : inputs) {
    channels += t.size(1);
    height = std::max(height, t.size(2));
    width = std::max(width, t.size(3));
  }
  // Every element is written by copy_block: data, or the zeros of a plane's padding.
  auto out = at::empty({inputs[0].size(0), channels, height, width}, inputs[0].options());
  int64_t offset = 0;
  for (const auto& t : inputs) {
    copy_block(t.contiguous(), out, offset, /*to_dense=*/false);
    offset += t.size(1);
  }
  return out;
}

std::vector<at::Tensor> skip_concat_backward_cpu(const at::Tensor& grad, at::IntArrayRef channels,
                                                 at::IntArrayRef heights, at::IntArrayRef widths) {
  TORCH_CHECK(channels.size() == heights.size() && heights.size() == widths.size(),
              "pynas::skip_concat_backward: channels, heights and widths must have one entry per input");
  TORCH_CHECK(grad.dim() == 4, "pynas::skip_concat_backward: grad must be 4-D, got ", grad.sizes());
  auto g = grad.contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(channels.size());
  int64_t offset = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    TORCH_CHECK(offset + channels[i] <= g.size(1) && heights[i] <= g.size(2) && widths[i] <= g.size(3),
                "pynas::skip_concat_backward: input ", i, " does not fit in grad of shape ", g.sizes());
    auto gi = at::empty({g.size(0), channels[i], heights[i], widths[i]}, g.options());
    copy_block(gi, g, offset, /*to_dense=*/true);
    grads.push_back(gi);
    offset += channels[i];
  }
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(pynas, CPU, m) {
  m.impl("skip_concat", &skip_concat_cpu);
  m.impl("skip_concat_backward", &skip_concat_backward_cpu);
}

}  // namespace pynas
