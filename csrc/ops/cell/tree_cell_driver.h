// The device-independent part of the tree-cell op: input checks, the forward time loop (one
// GEMM per step into preallocated buffers, then the fused elementwise pass) and the backward
// (reverse loop: fused pass, one GEMM for d h_{t-1}; dU by GEMMs over chunks of steps).
// The elementwise passes come from a Runner:
//   static constexpr c10::DeviceType kDevice;
//   at::Tensor to_device(const at::Tensor& cpu_int64, const at::Tensor& like);
//   template <typename T> void forward(const Dims&, const cell::ForwardStep<T>&);
//   template <typename T> void backward(const Dims&, const cell::BackwardStep<T>&);
// (tree_cell_cpu.cpp: the vectorised CPU passes; tree_cell_cuda.cu: one CUDA thread per element.)
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <c10/core/DeviceType.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "ops/cell/cell_kernels.h"
#include "ops/cell/cell_math.h"

namespace pynas {
namespace cell_driver {

// ----- checks -----------------------------------------------------------------------------------
struct Dims {
  int64_t steps, batch, hidden, base, num_programs, prog_len;
};

inline void check_float(const char* op, const char* name, const at::Tensor& t,
                        const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(),
              " but xproj is on ", ref.device(), "; expected device ", ref.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name, " has dtype ",
              t.scalar_type(), " but xproj has ", ref.scalar_type(),
              "; all float inputs must share one dtype");
}

inline void check_shape(const char* op, const char* name, const at::Tensor& t,
                        at::IntArrayRef want, const char* meaning) {
  TORCH_CHECK(t.sizes() == want, op, ": ", name, " must have shape ", meaning, " = ", want,
              ", got ", t.sizes());
}

// Validates everything (program contents too) for a kernel running on `kernel_device`; returns
// the dimensions and the programs / row programs as int64 contiguous CPU tensors.
inline std::tuple<Dims, at::Tensor, at::Tensor> check_inputs(
    const char* op, c10::DeviceType kernel_device, const at::Tensor& xproj, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& weight_hh, const at::Tensor& programs,
    const at::Tensor& row_program) {
  TORCH_CHECK(xproj.device().type() == kernel_device, op, ": xproj is on ", xproj.device(),
              "; this kernel runs on ", c10::DeviceTypeName(kernel_device, /*lower_case=*/true));
  TORCH_CHECK(xproj.scalar_type() == at::kFloat || xproj.scalar_type() == at::kDouble, op,
              ": xproj has dtype ", xproj.scalar_type(), "; expected float32 or float64");
  TORCH_CHECK(xproj.dim() == 3, op, ": xproj must be 3-D [T, B, N*H], got shape ",
              xproj.sizes());
  TORCH_CHECK(h0.dim() == 2, op, ": h0 must be 2-D [B, H], got shape ", h0.sizes());
  check_float(op, "h0", h0, xproj);
  check_float(op, "c0", c0, xproj);
  check_float(op, "weight_hh", weight_hh, xproj);
  Dims d{};
  d.steps = xproj.size(0);
  d.batch = xproj.size(1);
  d.hidden = h0.size(1);
  TORCH_CHECK(d.steps >= 1, op, ": xproj has ", d.steps, " time steps; expected at least 1");
  TORCH_CHECK(d.batch >= 1, op, ": xproj has batch size ", d.batch, "; expected at least 1");
  TORCH_CHECK(d.hidden >= 1, op, ": h0 has hidden size ", d.hidden, "; expected at least 1");
  check_shape(op, "h0", h0, {d.batch, d.hidden}, "[B, H] with B = xproj.size(1)");
  check_shape(op, "c0", c0, {d.batch, d.hidden}, "[B, H]");
  const int64_t width = xproj.size(2);
  TORCH_CHECK(width % d.hidden == 0, op, ": xproj's last dimension (", width,
              ") must be N*H, a multiple of the hidden size H = ", d.hidden);
  d.base = width / d.hidden;
  TORCH_CHECK(d.base >= 2 && d.base <= cell::kMaxBase && (d.base & (d.base - 1)) == 0, op,
              ": base N = xproj.size(2) / H = ", d.base,
              " must be a power of two in 2..", cell::kMaxBase);
  check_shape(op, "weight_hh", weight_hh, {d.hidden, width}, "[H, N*H]");

  TORCH_CHECK(programs.device().is_cpu() || programs.device() == xproj.device(), op,
              ": programs is on ", programs.device(),
              "; expected a CPU tensor (build it with pynas.ops.cell_program)");
  TORCH_CHECK(programs.scalar_type() == at::kLong || programs.scalar_type() == at::kInt, op,
              ": programs has dtype ", programs.scalar_type(), "; expected int64 (or int32)");
  d.prog_len = cell::program_length(static_cast<int>(d.base));
  TORCH_CHECK(programs.dim() == 2 && programs.size(0) >= 1 && programs.size(1) == d.prog_len,
              op, ": programs must have shape [P, 2N+3] = [P, ", d.prog_len, "] with P >= 1 for ",
              "base N = ", d.base, ", got ", programs.sizes());
  d.num_programs = programs.size(0);
  TORCH_CHECK(row_program.device().is_cpu() || row_program.device() == xproj.device(), op,
              ": row_program is on ", row_program.device(), "; expected a CPU tensor");
  TORCH_CHECK(row_program.scalar_type() == at::kLong || row_program.scalar_type() == at::kInt,
              op, ": row_program has dtype ", row_program.scalar_type(),
              "; expected int64 (or int32)");
  TORCH_CHECK(row_program.dim() == 1 && row_program.size(0) == d.batch, op,
              ": row_program must have shape [B] = [", d.batch, "], got ", row_program.sizes());

  at::Tensor progs = programs.to(at::kCPU, at::kLong).contiguous();
  at::Tensor rows = row_program.to(at::kCPU, at::kLong).contiguous();
  const int64_t num_nodes = 2 * d.base - 1;
  const int64_t* p = progs.data_ptr<int64_t>();
  for (int64_t i = 0; i < d.num_programs; ++i, p += d.prog_len) {
    TORCH_CHECK(p[cell::kProgBase] == d.base, op, ": program ", i, " is for base ",
                p[cell::kProgBase], " but xproj and h0 imply base N = ", d.base);
    TORCH_CHECK(p[cell::kProgCOut] >= 0 && p[cell::kProgCOut] < num_nodes, op, ": program ", i,
                " has c_out = ", p[cell::kProgCOut], "; expected a node index in 0..",
                num_nodes - 1);
    TORCH_CHECK(p[cell::kProgInjectAt] >= 0 && p[cell::kProgInjectAt] < num_nodes, op,
                ": program ", i, " has inject_at = ", p[cell::kProgInjectAt],
                "; expected a node index in 0..", num_nodes - 1);
    for (int64_t k = cell::kProgInjectOp; k < d.prog_len; ++k) {
      TORCH_CHECK(p[k] >= 0 && p[k] < cell::kNumOps, op, ": program ", i, " entry ", k,
                  " is op code ", p[k], "; expected 0..", cell::kNumOps - 1,
                  " (combine * 4 + activation)");
    }
  }
  const int64_t* r = rows.data_ptr<int64_t>();
  for (int64_t b = 0; b < d.batch; ++b) {
    TORCH_CHECK(r[b] >= 0 && r[b] < d.num_programs, op, ": row_program[", b, "] = ", r[b],
                "; expected a program index in 0..", d.num_programs - 1);
  }
  return {d, progs, rows};
}

// ----- time loops -------------------------------------------------------------------------------
inline at::Tensor weight_for_gemm(const at::Tensor& w) {
  // BLAS takes a matrix or its transpose as is; anything else is copied once per call.
  return (w.is_contiguous() || w.t().is_contiguous()) ? w : w.contiguous();
}

template <typename T, typename Runner>
void forward_loop(Runner& runner, const Dims& d, const at::Tensor& x, const at::Tensor& h0,
                  const at::Tensor& c0, const at::Tensor& w, const at::Tensor& progs,
                  const at::Tensor& rows, at::Tensor& hs, at::Tensor& hp_all, at::Tensor& cs,
                  bool keep_hp) {
  cell::ForwardStep<T> s{};
  s.programs = progs.data_ptr<int64_t>();
  s.row_program = rows.data_ptr<int64_t>();
  s.batch = d.batch;
  s.hidden = d.hidden;
  s.base = d.base;
  s.prog_len = d.prog_len;
  for (int64_t t = 0; t < d.steps; ++t) {
    at::Tensor hp = hp_all.select(0, keep_hp ? t : 0);
    at::mm_out(hp, t == 0 ? h0 : hs.select(0, t - 1), w);
    s.xp = x.data_ptr<T>() + t * d.batch * d.base * d.hidden;
    s.hp = hp.data_ptr<T>();
    s.c_prev = t == 0 ? c0.data_ptr<T>() : cs.data_ptr<T>() + (t - 1) * d.batch * d.hidden;
    s.h = hs.data_ptr<T>() + t * d.batch * d.hidden;
    s.c = cs.data_ptr<T>() + t * d.batch * d.hidden;
    runner.forward(d, s);
  }
}

// The forward op: hs [T, B, H], h_T, c_T, hp_all [T, B, N*H], cs [T, B, H].
template <typename Runner>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_impl(
    Runner& runner, const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
    bool save_for_backward) {
  constexpr const char* op = "pynas::tree_cell_seq";
  auto [d, cpu_progs, cpu_rows] = check_inputs(op, Runner::kDevice, xproj, h0, c0, weight_hh,
                                               programs, row_program);
  const at::Tensor progs = runner.to_device(cpu_progs, xproj);
  const at::Tensor rows = runner.to_device(cpu_rows, xproj);
  const at::Tensor x = xproj.contiguous();
  const at::Tensor h0c = h0.contiguous();
  const at::Tensor c0c = c0.contiguous();
  const at::Tensor w = weight_for_gemm(weight_hh);
  const auto opts = xproj.options();
  at::Tensor hs = at::empty({d.steps, d.batch, d.hidden}, opts);
  at::Tensor cs = at::empty({d.steps, d.batch, d.hidden}, opts);
  // Without a backward to come, one step's recurrent projection is all the memory needed.
  at::Tensor hp_all =
      at::empty({save_for_backward ? d.steps : 1, d.batch, d.base * d.hidden}, opts);
  if (x.scalar_type() == at::kFloat) {
    forward_loop<float>(runner, d, x, h0c, c0c, w, progs, rows, hs, hp_all, cs,
                        save_for_backward);
  } else {
    forward_loop<double>(runner, d, x, h0c, c0c, w, progs, rows, hs, hp_all, cs,
                         save_for_backward);
  }
  at::Tensor h_last = hs.select(0, d.steps - 1).clone();
  at::Tensor c_last = cs.select(0, d.steps - 1).clone();
  if (!save_for_backward) {
    hp_all = at::empty({0, d.batch, d.base * d.hidden}, opts);
    cs = at::empty({0, d.batch, d.hidden}, opts);
  }
  return {hs, h_last, c_last, hp_all, cs};
}

// Adds sum_{t in [t0, t0 + len)} h_{t-1}^T dhp_t to grad_w with one GEMM (h_{-1} = h0, which is
// not contiguous with hs, so a chunk starting at step 0 takes h0's share with a small extra GEMM).
// dhp holds the chunk's steps in order, dhp[i] = d hp_{t0 + i}.
inline void add_weight_grad(at::Tensor& grad_w, bool first, const at::Tensor& h0,
                            const at::Tensor& hs, const at::Tensor& dhp, int64_t t0,
                            int64_t len) {
  const int64_t hidden = h0.size(1);
  const int64_t width = dhp.size(2);
  const float beta = first ? 0.0f : 1.0f;
  if (t0 > 0) {
    const at::Tensor h_prev = hs.narrow(0, t0 - 1, len).reshape({-1, hidden});
    grad_w.addmm_(h_prev.t(), dhp.narrow(0, 0, len).reshape({-1, width}), beta);
    return;
  }
  grad_w.addmm_(h0.t(), dhp.select(0, 0), beta);
  if (len > 1) {
    const at::Tensor h_prev = hs.narrow(0, 0, len - 1).reshape({-1, hidden});
    grad_w.addmm_(h_prev.t(), dhp.narrow(0, 1, len - 1).reshape({-1, width}));
  }
}

// Reverse time loop. d hp_t of the last `chunk` steps is kept in a ring buffer [chunk, B, N*H]:
// per step it feeds the GEMM for d h_{t-1}; whenever a chunk of steps is complete its share of
// dU is added with one GEMM over the whole chunk. chunk = T: a single dU GEMM after the loop.
template <typename T, typename Runner>
void backward_loop(Runner& runner, const Dims& d, int64_t chunk, const at::Tensor& x,
                   const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w,
                   const at::Tensor& progs, const at::Tensor& rows, const at::Tensor& hs,
                   const at::Tensor& hp_all, const at::Tensor& cs, const at::Tensor& grad_hs,
                   at::Tensor& dh, at::Tensor& dc, at::Tensor& grad_x, at::Tensor& dhp_buf,
                   at::Tensor& grad_w) {
  const int64_t width = d.base * d.hidden;
  const int64_t plane = d.batch * d.hidden;
  const at::Tensor w_t = w.t();
  cell::BackwardStep<T> s{};
  s.programs = progs.data_ptr<int64_t>();
  s.row_program = rows.data_ptr<int64_t>();
  s.batch = d.batch;
  s.hidden = d.hidden;
  s.base = d.base;
  s.prog_len = d.prog_len;
  s.dh = dh.data_ptr<T>();
  s.dc = dc.data_ptr<T>();
  bool first_chunk = true;
  for (int64_t t = d.steps - 1; t >= 0; --t) {
    const int64_t t0 = (t / chunk) * chunk;  // first step of t's chunk
    const int64_t slot = t - t0;
    s.xp = x.data_ptr<T>() + t * d.batch * width;
    s.hp = hp_all.data_ptr<T>() + t * d.batch * width;
    s.c_prev = t == 0 ? c0.data_ptr<T>() : cs.data_ptr<T>() + (t - 1) * plane;
    s.dh_extra = grad_hs.data_ptr<T>() + t * plane;
    s.dxp = grad_x.data_ptr<T>() + t * d.batch * width;
    s.dhp = dhp_buf.data_ptr<T>() + slot * d.batch * width;
    runner.backward(d, s);
    at::mm_out(dh, dhp_buf.select(0, slot), w_t);  // gradient into h_{t-1}
    if (slot == 0) {
      add_weight_grad(grad_w, first_chunk, h0, hs, dhp_buf, t0,
                      std::min(chunk, d.steps - t0));
      first_chunk = false;
    }
  }
}

// The backward. With donate_hp, the gradient of xproj is written over hp_all (each element of
// hp_t is read for the last time by the very pass that writes the same element of d xp_t), so
// the backward needs no [T, B, N*H] buffer of its own; grad_x is then hp_all itself.
template <typename Runner>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_impl(
    Runner& runner, const char* op, const at::Tensor& grad_hs, const at::Tensor& grad_h_last,
    const at::Tensor& grad_c_last, const at::Tensor& xproj, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& weight_hh, const at::Tensor& programs,
    const at::Tensor& row_program, const at::Tensor& hs, const at::Tensor& hp_all,
    const at::Tensor& cs, int64_t weight_grad_chunk, bool donate_hp) {
  auto [d, cpu_progs, cpu_rows] = check_inputs(op, Runner::kDevice, xproj, h0, c0, weight_hh,
                                               programs, row_program);
  const at::Tensor progs = runner.to_device(cpu_progs, xproj);
  const at::Tensor rows = runner.to_device(cpu_rows, xproj);
  const int64_t width = d.base * d.hidden;
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"grad_hs", grad_hs},
                                {"grad_h_last", grad_h_last},
                                {"grad_c_last", grad_c_last},
                                {"hs", hs},
                                {"hp_all", hp_all},
                                {"cs", cs}}) {
    check_float(op, name, t, xproj);
  }
  check_shape(op, "grad_hs", grad_hs, {d.steps, d.batch, d.hidden}, "[T, B, H]");
  check_shape(op, "grad_h_last", grad_h_last, {d.batch, d.hidden}, "[B, H]");
  check_shape(op, "grad_c_last", grad_c_last, {d.batch, d.hidden}, "[B, H]");
  check_shape(op, "hs", hs, {d.steps, d.batch, d.hidden}, "[T, B, H]");
  TORCH_CHECK(hp_all.sizes() == at::IntArrayRef({d.steps, d.batch, width}), op,
              ": hp_all must have shape [T, B, N*H] = ",
              at::IntArrayRef({d.steps, d.batch, width}), ", got ", hp_all.sizes(),
              " (was the forward run with save_for_backward=False?)");
  check_shape(op, "cs", cs, {d.steps, d.batch, d.hidden}, "[T, B, H]");
  TORCH_CHECK(weight_grad_chunk >= 0, op, ": weight_grad_chunk = ", weight_grad_chunk,
              "; expected 0 (all steps in one GEMM) or a positive number of steps");
  const int64_t chunk = (weight_grad_chunk == 0 || weight_grad_chunk > d.steps)
                            ? d.steps
                            : weight_grad_chunk;

  const at::Tensor x = xproj.contiguous();
  const at::Tensor h0c = h0.contiguous();
  const at::Tensor c0c = c0.contiguous();
  const at::Tensor hsc = hs.contiguous();
  if (donate_hp) {
    TORCH_CHECK(hp_all.is_contiguous(), op,
                ": hp_all must be contiguous to be overwritten with grad_xproj (strides ",
                hp_all.strides(), ")");
  }
  const at::Tensor hpc = hp_all.contiguous();
  const at::Tensor csc = cs.contiguous();
  const at::Tensor ghs = grad_hs.contiguous();
  const at::Tensor w = weight_for_gemm(weight_hh);
  const auto opts = xproj.options();
  at::Tensor dh = grad_h_last.contiguous().clone();  // becomes grad_h0
  at::Tensor dc = grad_c_last.contiguous().clone();  // becomes grad_c0
  at::Tensor grad_x = donate_hp ? hpc : at::empty({d.steps, d.batch, width}, opts);
  at::Tensor dhp_buf = at::empty({chunk, d.batch, width}, opts);
  at::Tensor grad_w = at::empty({d.hidden, width}, opts);
  if (x.scalar_type() == at::kFloat) {
    backward_loop<float>(runner, d, chunk, x, h0c, c0c, w, progs, rows, hsc, hpc, csc, ghs, dh, dc,
                         grad_x, dhp_buf, grad_w);
  } else {
    backward_loop<double>(runner, d, chunk, x, h0c, c0c, w, progs, rows, hsc, hpc, csc, ghs, dh, dc,
                          grad_x, dhp_buf, grad_w);
  }
  return {grad_x, dh, dc, grad_w};
}

// ----- the op entry points, one set per Runner ----------------------------------------------------
template <typename Runner>
struct TreeCellOps {
  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward(
      const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
      const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
      bool save_for_backward, bool donate_saved) {
    Runner runner;
    return forward_impl(runner, xproj, h0, c0, weight_hh, programs, row_program,
                        save_for_backward);
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
      const at::Tensor& grad_hs, const at::Tensor& grad_h_last, const at::Tensor& grad_c_last,
      const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
      const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
      const at::Tensor& hs, const at::Tensor& hp_all, const at::Tensor& cs,
      int64_t weight_grad_chunk) {
    Runner runner;
    return backward_impl(runner, "pynas::_tree_cell_seq_backward", grad_hs, grad_h_last,
                         grad_c_last, xproj, h0, c0, weight_hh, programs, row_program, hs, hp_all,
                         cs, weight_grad_chunk, /*donate_hp=*/false);
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_donate(
      const at::Tensor& grad_hs, const at::Tensor& grad_h_last, const at::Tensor& grad_c_last,
      const at::Tensor& xproj, const at::Tensor& h0, const at::Tensor& c0,
      const at::Tensor& weight_hh, const at::Tensor& programs, const at::Tensor& row_program,
      const at::Tensor& hs, at::Tensor& hp_all, const at::Tensor& cs, int64_t weight_grad_chunk) {
    Runner runner;
    auto [grad_x, dh, dc, grad_w] = backward_impl(
        runner, "pynas::_tree_cell_seq_backward_donate", grad_hs, grad_h_last, grad_c_last, xproj,
        h0, c0, weight_hh, programs, row_program, hs, hp_all, cs, weight_grad_chunk,
        /*donate_hp=*/true);
    return {dh, dc, grad_w};
  }
};

}  // namespace cell_driver
}  // namespace pynas
