// CUDA kernels of the tree-cell op: one thread per (batch row, hidden unit) walks the tree with
// the per-element math of cell_math.h (the same functions the CPU pass uses). The time loops, the
// checks and the cuBLAS GEMMs (at::mm_out on CUDA tensors) are shared with the CPU op through
// tree_cell_driver.h. Compiled only when CMake finds a CUDA compiler AND torch is a CUDA build.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/cell/cell_kernels.h"
#include "ops/cell/cell_math.h"
#include "ops/cell/tree_cell_driver.h"

namespace pynas {
namespace {

using cell_driver::Dims;
namespace cm = ::pynas::cell;

constexpr int kThreads = 256;

// Evaluates the tree for one element: acts[k] = node k's activation as its parent reads it;
// before = node inject_at's activation before the injection; c_pre = node c_out's pre-activation.
template <typename T>
__device__ __forceinline__ void tree_eval(const int64_t* prog, int base, int64_t hidden,
                                          const T* xp, const T* hp, T c_prev, T* acts,
                                          T& before, T& c_pre) {
  const int num_nodes = 2 * base - 1;
  const int64_t node_c = prog[cm::kProgCOut];
  const int64_t node_inj = prog[cm::kProgInjectAt];
  const int64_t inj_op = prog[cm::kProgInjectOp];
  for (int k = 0; k < num_nodes; ++k) {
    const int64_t op = prog[cm::kProgNodes + k];
    T l, r;
    if (k < base) {
      l = xp[k * hidden];
      r = hp[k * hidden];
    } else {
      const int left = 2 * (k - base);
      l = acts[left];
      r = acts[left + 1];
    }
    const T pre = cm::combine_rt(cm::op_combine(op), l, r);
    if (k == node_c) c_pre = pre;
    T a = cm::activate_rt(cm::op_act(op), pre);
    if (k == node_inj) {
      before = a;
      a = cm::activate_rt(cm::op_act(inj_op), cm::combine_rt(cm::op_combine(inj_op), a, c_prev));
    }
    acts[k] = a;
  }
}

template <typename T>
__global__ void forward_kernel(cm::ForwardStep<T> s) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= s.batch * s.hidden) return;
  const int64_t b = idx / s.hidden;
  const int64_t j = idx % s.hidden;
  const int64_t* prog = s.programs + s.row_program[b] * s.prog_len;
  const int64_t offset = b * s.base * s.hidden + j;
  T acts[cm::kMaxNodes];
  T before = T(0), c_pre = T(0);
  tree_eval<T>(prog, static_cast<int>(s.base), s.hidden, s.xp + offset, s.hp + offset,
               s.c_prev[idx], acts, before, c_pre);
  s.h[idx] = acts[2 * s.base - 2];
  s.c[idx] = c_pre;
}

// Recomputes the tree, then backpropagates. d xp may be written over hp (the donating backward):
// each thread reads its hp elements before writing the same elements of d xp.
template <typename T>
__global__ void backward_kernel(cm::BackwardStep<T> s) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= s.batch * s.hidden) return;
  const int64_t b = idx / s.hidden;
  const int64_t j = idx % s.hidden;
  const int64_t* prog = s.programs + s.row_program[b] * s.prog_len;
  const int64_t offset = b * s.base * s.hidden + j;
  const int base = static_cast<int>(s.base);
  const int64_t hidden = s.hidden;
  const T* xp = s.xp + offset;
  const T* hp = s.hp + offset;
  T* dxp = s.dxp + offset;
  T* dhp = s.dhp + offset;
  const T c_prev = s.c_prev[idx];
  T acts[cm::kMaxNodes];
  T grads[cm::kMaxNodes];
  T before = T(0), c_pre = T(0);
  tree_eval<T>(prog, base, hidden, xp, hp, c_prev, acts, before, c_pre);

  const int root = 2 * base - 2;
  grads[root] = s.dh[idx] + (s.dh_extra ? s.dh_extra[idx] : T(0));
  const int64_t node_c = prog[cm::kProgCOut];
  const int64_t node_inj = prog[cm::kProgInjectAt];
  const int64_t inj_op = prog[cm::kProgInjectOp];
  const T dc = s.dc[idx];
  T dc_prev = T(0);
  for (int k = root; k >= 0; --k) {
    const int64_t op = prog[cm::kProgNodes + k];
    T g = grads[k];
    T y = acts[k];
    if (k == node_inj) {
      const T dq = cm::activate_backward_rt(cm::op_act(inj_op), g, y);
      const bool mul = cm::op_combine(inj_op) == cm::kMul;
      dc_prev += mul ? dq * before : dq;
      g = mul ? dq * c_prev : dq;
      y = before;
    }
    T d = cm::activate_backward_rt(cm::op_act(op), g, y);
    if (k == node_c) d += dc;
    const bool mul = cm::op_combine(op) == cm::kMul;
    if (k < base) {
      const T l = xp[k * hidden];
      const T r = hp[k * hidden];
      dxp[k * hidden] = mul ? d * r : d;
      dhp[k * hidden] = mul ? d * l : d;
    } else {
      const int left = 2 * (k - base);
      grads[left] = mul ? d * acts[left + 1] : d;
      grads[left + 1] = mul ? d * acts[left] : d;
    }
  }
  s.dc[idx] = dc_prev;
}

struct CudaRunner {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;

  at::Tensor to_device(const at::Tensor& cpu, const at::Tensor& like) {
    return cpu.to(like.device());
  }

  template <typename T>
  void forward(const Dims& d, const cm::ForwardStep<T>& s) {
    const int64_t n = d.batch * d.hidden;
    const auto blocks = static_cast<unsigned int>((n + kThreads - 1) / kThreads);
    forward_kernel<T><<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(s);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  void backward(const Dims& d, const cm::BackwardStep<T>& s) {
    const int64_t n = d.batch * d.hidden;
    const auto blocks = static_cast<unsigned int>((n + kThreads - 1) / kThreads);
    backward_kernel<T><<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(s);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

using CudaOps = cell_driver::TreeCellOps<CudaRunner>;

// The device to run on. The dispatcher picks this kernel when any input is a CUDA tensor; xproj
// must be one before a CUDA guard can be set (the driver then checks all the others against it).
c10::Device cuda_device(const at::Tensor& xproj, const char* op) {
  TORCH_CHECK(xproj.is_cuda(), op, ": xproj is on ", xproj.device(),
              " but other inputs are on CUDA; move all inputs to one CUDA device");
  return xproj.device();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_cuda(
    const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
    bool save_for_backward, bool donate_saved) {
  const c10::cuda::CUDAGuard guard(cuda_device(xproj, "pynas::tree_cell_seq"));
  return CudaOps::forward(xproj, h0, c0, weight_hh, programs, row_program, save_for_backward,
                          donate_saved);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_cuda(
    const at::Tensor& grad_hs, const at::Tensor& grad_h_last, const at::Tensor& grad_c_last,
    const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
    const at::Tensor& hs, const at::Tensor& hp_all, const at::Tensor& cs,
    int64_t weight_grad_chunk) {
  const c10::cuda::CUDAGuard guard(cuda_device(xproj, "pynas::_tree_cell_seq_backward"));
  return CudaOps::backward(grad_hs, grad_h_last, grad_c_last, xproj, h0, c0, weight_hh, programs,
                           row_program, hs, hp_all, cs, weight_grad_chunk);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_donate_cuda(
    const at::Tensor& grad_hs, const at::Tensor& grad_h_last, const at::Tensor& grad_c_last,
    const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
    const at::Tensor& hs, at::Tensor& hp_all, const at::Tensor& cs, int64_t weight_grad_chunk) {
  const c10::cuda::CUDAGuard guard(cuda_device(xproj, "pynas::_tree_cell_seq_backward_donate"));
  return CudaOps::backward_donate(grad_hs, grad_h_last, grad_c_last, xproj, h0, c0, weight_hh,
                                  programs, row_program, hs, hp_all, cs, weight_grad_chunk);
}

}  // namespace

TORCH_LIBRARY_IMPL(pynas, CUDA, m) {
  m.impl("tree_cell_seq", &forward_cuda);
  m.impl("_tree_cell_seq_backward", &backward_cuda);
  m.impl("_tree_cell_seq_backward_donate", &backward_donate_cuda);
}

}  // namespace pynas
