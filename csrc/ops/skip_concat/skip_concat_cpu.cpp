// Padded skip-concat on the CPU: one parallel pass of row copies, no intermediate padded tensors.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

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

// Copies `src` [N, C, H, W] (contiguous) into the channel slice of `dst` [N, Ctot, Hd, Wd]
// starting at channel `offset`, top-left aligned. With `to_src` the copy goes the other way.
void copy_block(const at::Tensor& dense, const at::Tensor& padded, int64_t offset, bool to_dense) {
  const int64_t n = dense.size(0), c = dense.size(1), h = dense.size(2), w = dense.size(3);
  const int64_t ctot = padded.size(1), hp = padded.size(2), wp = padded.size(3);
  const int64_t elem = dense.element_size();
  auto* dense_ptr = static_cast<char*>(dense.data_ptr());
  auto* padded_ptr = static_cast<char*>(padded.data_ptr());
  const int64_t rows = n * c * h;
  if (rows == 0 || w == 0) return;
  at::parallel_for(0, rows, 2048 / std::max<int64_t>(w, 1) + 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t y = r % h;
      const int64_t ch = (r / h) % c;
      const int64_t b = r / (h * c);
      char* d = dense_ptr + r * w * elem;
      char* p = padded_ptr + (((b * ctot + offset + ch) * hp + y) * wp) * elem;
      if (to_dense) {
        std::memcpy(d, p, w * elem);
      } else {
        std::memcpy(p, d, w * elem);
      }
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
  auto out = at::zeros({inputs[0].size(0), channels, height, width}, inputs[0].options());
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
