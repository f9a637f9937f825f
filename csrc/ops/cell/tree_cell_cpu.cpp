// The fused tree-cell sequence op on the CPU: the run-time choice of the vectorised elementwise
// pass (cell_pass_*.cpp) and its parallel execution; the time loops are in tree_cell_driver.h.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "ops/cell/cell_kernels.h"
#include "ops/cell/tree_cell_driver.h"

namespace pynas {
namespace {

using cell::Blocking;
using cell::PassTable;
using cell_driver::Dims;

// ----- run-time choice of the compiled pass ------------------------------------------------------
const PassTable& pass_table() {
  static const PassTable generic = cell::pass_table_generic();
  static const PassTable avx2 = cell::pass_table_avx2();
  static const PassTable avx512 = cell::pass_table_avx512();
#if defined(__x86_64__) || defined(__i386__)
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                                 __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512bw") &&
                                 __builtin_cpu_supports("avx512vl");
#else
  static const bool has_avx2 = false;
  static const bool has_avx512 = false;
#endif
  // PYNAS_CELL_ISA=generic|avx2|avx512 caps the instruction set (for benchmarks and debugging).
  const char* cap = std::getenv("PYNAS_CELL_ISA");
  const std::string want = cap ? cap : "";
  if (want == "generic") return generic;
  if (want == "avx2") return has_avx2 ? avx2 : generic;
  if (has_avx512) return avx512;
  if (has_avx2) return avx2;
  return generic;
}

std::string tree_cell_isa() { return pass_table().isa; }

// Runs items [0, batch * num_blocks) of a pass on the intra-op thread pool. Small steps stay on
// one thread: a parallel region costs more than it saves below ~64k node evaluations.
template <typename F>
void run_items(const Dims& d, Blocking blk, F&& fn) {
  const int64_t items = d.batch * blk.num_blocks;
  const int64_t work_per_item = blk.block * (2 * d.base - 1);
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(work_per_item, 1));
  at::parallel_for(0, items, grain, [&](int64_t begin, int64_t end) { fn(begin, end); });
}

struct CpuRunner {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;
  const PassTable& table = pass_table();

  at::Tensor to_device(const at::Tensor& cpu, const at::Tensor& /*like*/) { return cpu; }

  template <typename T>
  void forward(const Dims& d, const cell::ForwardStep<T>& s) {
    const Blocking blk = cell::make_blocking(d.hidden);
    const auto pass = [&] {
      if constexpr (std::is_same_v<T, float>) {
        return table.forward_f32;
      } else {
        return table.forward_f64;
      }
    }();
    run_items(d, blk, [&](int64_t begin, int64_t end) { pass(s, blk, begin, end); });
  }

  template <typename T>
  void backward(const Dims& d, const cell::BackwardStep<T>& s) {
    const Blocking blk = cell::make_blocking(d.hidden);
    const auto pass = [&] {
      if constexpr (std::is_same_v<T, float>) {
        return table.backward_f32;
      } else {
        return table.backward_f64;
      }
    }();
    run_items(d, blk, [&](int64_t begin, int64_t end) { pass(s, blk, begin, end); });
  }
};

using CpuOps = cell_driver::TreeCellOps<CpuRunner>;

}  // namespace

TORCH_LIBRARY_IMPL(pynas, CPU, m) {
  m.impl("tree_cell_seq", &CpuOps::forward);
  m.impl("_tree_cell_seq_backward", &CpuOps::backward);
  m.impl("_tree_cell_seq_backward_donate", &CpuOps::backward_donate);
}

TORCH_LIBRARY_IMPL(pynas, CompositeExplicitAutograd, m) {
  m.impl("tree_cell_isa", &tree_cell_isa);
}

}  // namespace pynas
