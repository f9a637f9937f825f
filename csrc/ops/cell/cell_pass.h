// The fused elementwise passes of the tree cell on the CPU, as templates over the element type.
// Included by each cell_pass_<isa>.cpp, which is compiled with that ISA's flags and defines
// PYNAS_CELL_ISA first (so every inline function here gets an ISA-specific mangled name).
//
// Work item = (batch row, block of <= kBlock hidden units). For an item the tree is interpreted
// node by node: the op of a node is decoded once, then a branch-free loop over the block (which
// the compiler vectorises) applies it. Node values live in a small stack array (<= 31 nodes x
// kBlock), so nothing per node ever reaches memory outside L1.
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/cell/cell_kernels.h"
#include "ops/cell/cell_math.h"

#if defined(__GNUC__)
#define PYNAS_RESTRICT __restrict__
#define PYNAS_IVDEP _Pragma("GCC ivdep")
#else
#define PYNAS_RESTRICT
#define PYNAS_IVDEP
#endif

namespace pynas {
namespace cell {
inline namespace PYNAS_CELL_ISA {

// out = act(combine(l, r)); optionally pre = combine(l, r).
template <typename T, int C, int A, bool kStorePre>
inline void node_forward(const T* PYNAS_RESTRICT l, const T* PYNAS_RESTRICT r,
                         T* PYNAS_RESTRICT out, T* PYNAS_RESTRICT pre, int64_t n) {
  PYNAS_IVDEP
  for (int64_t j = 0; j < n; ++j) {
    const T p = combine<C>(l[j], r[j]);
    if constexpr (kStorePre) pre[j] = p;
    out[j] = activate<A>(p);
  }
}

// value = act_inj(combine_inj(value, c_prev)); the value before injection is kept in before.
template <typename T, int C, int A>
inline void inject_forward(T* PYNAS_RESTRICT value, const T* PYNAS_RESTRICT c_prev,
                           T* PYNAS_RESTRICT before, int64_t n) {
  PYNAS_IVDEP
  for (int64_t j = 0; j < n; ++j) {
    const T a = value[j];
    if (before) before[j] = a;
    value[j] = activate<A>(combine<C>(a, c_prev[j]));
  }
}

// Backward of one node: d_pre = act'(y) applied to g (+ dc if this node is c_out), then into both
// operands.
// For a leaf, dl may be the very memory r points to (the backward may write d xp over hp): each
// element is read before the same element is written, so no restrict on l, r, dl.
template <typename T, int C, int A>
inline void node_backward(const T* PYNAS_RESTRICT g, const T* PYNAS_RESTRICT y,
                          const T* PYNAS_RESTRICT dc, const T* l, const T* r, T* dl,
                          T* PYNAS_RESTRICT dr, int64_t n) {
  if (dc) {
    PYNAS_IVDEP
    for (int64_t j = 0; j < n; ++j) {
      const T d = activate_backward<A>(g[j], y[j]) + dc[j];
      dl[j] = d * combine_partial<C>(r[j]);
      dr[j] = d * combine_partial<C>(l[j]);
    }
  } else {
    PYNAS_IVDEP
    for (int64_t j = 0; j < n; ++j) {
      const T d = activate_backward<A>(g[j], y[j]);
      dl[j] = d * combine_partial<C>(r[j]);
      dr[j] = d * combine_partial<C>(l[j]);
    }
  }
}

// Backward of the injection at a node: g (gradient of the injected value, in place) becomes the
// gradient of the value before injection; the c_prev share is added to dc_prev.
template <typename T, int C, int A>
inline void inject_backward(T* PYNAS_RESTRICT g, const T* PYNAS_RESTRICT after,
                            const T* PYNAS_RESTRICT before, const T* PYNAS_RESTRICT c_prev,
                            T* PYNAS_RESTRICT dc_prev, int64_t n) {
  PYNAS_IVDEP
  for (int64_t j = 0; j < n; ++j) {
    const T dq = activate_backward<A>(g[j], after[j]);
    dc_prev[j] += dq * combine_partial<C>(before[j]);
    g[j] = dq * combine_partial<C>(c_prev[j]);
  }
}

#define PYNAS_CELL_OP_SWITCH(op, CALL) \
  switch (op) {                        \
    case 0: CALL(kAdd, kIdentity); break; \
    case 1: CALL(kAdd, kTanh); break;     \
    case 2: CALL(kAdd, kSigmoid); break;  \
    case 3: CALL(kAdd, kRelu); break;     \
    case 4: CALL(kMul, kIdentity); break; \
    case 5: CALL(kMul, kTanh); break;     \
    case 6: CALL(kMul, kSigmoid); break;  \
    default: CALL(kMul, kRelu); break;    \
  }

// Evaluates the tree for hidden units [j0, j0 + n) of one row. Node k's activation (after
// injection, as its parent reads it) goes to acts + k * kBlock, except the root's when root_out is
// given. The pre-injection activation of node inject_at goes to before_inject (if given), the
// pre-activation of node c_out to c_out (if given).
template <typename T>
inline void tree_forward(const int64_t* PYNAS_RESTRICT prog, int64_t base, int64_t hidden,
                         const T* xp, const T* hp, const T* c_prev, int64_t n, T* acts,
                         T* root_out, T* c_out, T* before_inject) {
  const int64_t num_nodes = 2 * base - 1;
  const int64_t root = num_nodes - 1;
  const int64_t node_c = prog[kProgCOut];
  const int64_t node_inj = prog[kProgInjectAt];
  for (int64_t k = 0; k < num_nodes; ++k) {
    const int64_t op = prog[kProgNodes + k];
    const T* l;
    const T* r;
    if (k < base) {
      l = xp + k * hidden;
      r = hp + k * hidden;
    } else {
      const int64_t left = 2 * (k - base);
      l = acts + left * kBlock;
      r = acts + (left + 1) * kBlock;
    }
    T* out = (k == root && root_out) ? root_out : acts + k * kBlock;
    if (k == node_c && c_out) {
#define PYNAS_CALL(C, A) node_forward<T, C, A, true>(l, r, out, c_out, n)
      PYNAS_CELL_OP_SWITCH(op, PYNAS_CALL)
#undef PYNAS_CALL
    } else {
#define PYNAS_CALL(C, A) node_forward<T, C, A, false>(l, r, out, nullptr, n)
      PYNAS_CELL_OP_SWITCH(op, PYNAS_CALL)
#undef PYNAS_CALL
    }
    if (k == node_inj) {
#define PYNAS_CALL(C, A) inject_forward<T, C, A>(out, c_prev, before_inject, n)
      PYNAS_CELL_OP_SWITCH(prog[kProgInjectOp], PYNAS_CALL)
#undef PYNAS_CALL
    }
  }
}

// Asks for the leaf operands of a future work item: num_leaves runs of n elements, `stride`
// apart. The runs are short (one block per leaf), too short for the hardware prefetcher to
// follow, and during the backward they come from DRAM (written one window earlier).
template <typename T>
inline void prefetch_leaves(const T* p, int64_t num_leaves, int64_t stride, int64_t n,
                            bool for_write) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t k = 0; k < num_leaves; ++k) {
    const T* row = p + k * stride;
    for (int64_t j = 0; j < n; j += kLine) {
      if (for_write) {
        __builtin_prefetch(row + j, 1, 2);
      } else {
        __builtin_prefetch(row + j, 0, 2);
      }
    }
  }
}

template <typename T>
void forward_items(const ForwardStep<T>& s, Blocking blk, int64_t begin, int64_t end) {
  alignas(64) T acts[kMaxNodes * kBlock];
  const int64_t width = s.base * s.hidden;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t b = item / blk.num_blocks;
    const int64_t j0 = (item % blk.num_blocks) * blk.block;
    const int64_t n = (j0 + blk.block <= s.hidden) ? blk.block : s.hidden - j0;
    const int64_t* prog = s.programs + s.row_program[b] * s.prog_len;
    const int64_t row = b * s.hidden + j0;
    if (item + 1 < end) {
      const int64_t nb = (item + 1) / blk.num_blocks;
      const int64_t nj = ((item + 1) % blk.num_blocks) * blk.block;
      prefetch_leaves(s.xp + nb * width + nj, s.base, s.hidden, blk.block, false);
    }
    tree_forward<T>(prog, s.base, s.hidden, s.xp + b * width + j0, s.hp + b * width + j0,
                    s.c_prev + row, n, acts, s.h + row, s.c + row, nullptr);
  }
}

template <typename T>
void backward_items(const BackwardStep<T>& s, Blocking blk, int64_t begin, int64_t end) {
  alignas(64) T acts[kMaxNodes * kBlock];
  alignas(64) T grads[kMaxNodes * kBlock];
  alignas(64) T before[kBlock];
  alignas(64) T dc_prev[kBlock];
  const int64_t width = s.base * s.hidden;
  const int64_t num_nodes = 2 * s.base - 1;
  const int64_t root = num_nodes - 1;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t b = item / blk.num_blocks;
    const int64_t j0 = (item % blk.num_blocks) * blk.block;
    const int64_t n = (j0 + blk.block <= s.hidden) ? blk.block : s.hidden - j0;
    const int64_t* prog = s.programs + s.row_program[b] * s.prog_len;
    const int64_t row = b * s.hidden + j0;
    const T* xp = s.xp + b * width + j0;
    const T* hp = s.hp + b * width + j0;
    const T* c_prev = s.c_prev + row;
    T* dxp = s.dxp + b * width + j0;
    T* dhp = s.dhp + b * width + j0;
    T* dc = s.dc + row;
    if (item + 1 < end) {
      const int64_t nb = (item + 1) / blk.num_blocks;
      const int64_t offset = nb * width + ((item + 1) % blk.num_blocks) * blk.block;
      prefetch_leaves(s.xp + offset, s.base, s.hidden, blk.block, false);
      prefetch_leaves(s.hp + offset, s.base, s.hidden, blk.block, false);
      prefetch_leaves(s.dxp + offset, s.base, s.hidden, blk.block, true);
    }

    tree_forward<T>(prog, s.base, s.hidden, xp, hp, c_prev, n, acts, nullptr, nullptr, before);

    T* g_root = grads + root * kBlock;
    const T* dh = s.dh + row;
    if (s.dh_extra) {
      const T* dh2 = s.dh_extra + row;
      for (int64_t j = 0; j < n; ++j) g_root[j] = dh[j] + dh2[j];
    } else {
      std::memcpy(g_root, dh, sizeof(T) * n);
    }
    std::memset(dc_prev, 0, sizeof(T) * n);

    const int64_t node_c = prog[kProgCOut];
    const int64_t node_inj = prog[kProgInjectAt];
    for (int64_t k = root; k >= 0; --k) {
      T* g = grads + k * kBlock;
      const T* y = acts + k * kBlock;
      if (k == node_inj) {
#define PYNAS_CALL(C, A) inject_backward<T, C, A>(g, y, before, c_prev, dc_prev, n)
        PYNAS_CELL_OP_SWITCH(prog[kProgInjectOp], PYNAS_CALL)
#undef PYNAS_CALL
        y = before;
      }
      const T* dck = (k == node_c) ? dc : nullptr;
      const T* l;
      const T* r;
      T* dl;
      T* dr;
      if (k < s.base) {
        l = xp + k * s.hidden;
        r = hp + k * s.hidden;
        dl = dxp + k * s.hidden;
        dr = dhp + k * s.hidden;
      } else {
        const int64_t left = 2 * (k - s.base);
        l = acts + left * kBlock;
        r = acts + (left + 1) * kBlock;
        dl = grads + left * kBlock;
        dr = grads + (left + 1) * kBlock;
      }
#define PYNAS_CALL(C, A) node_backward<T, C, A>(g, y, dck, l, r, dl, dr, n)
      PYNAS_CELL_OP_SWITCH(prog[kProgNodes + k], PYNAS_CALL)
#undef PYNAS_CALL
    }
    std::memcpy(dc, dc_prev, sizeof(T) * n);  // dc (read at node c_out above) -> d c_{t-1}
  }
}

inline PassTable make_pass_table(const char* isa) {
  return {isa, &forward_items<float>, &forward_items<double>, &backward_items<float>,
          &backward_items<double>};
}

}  // namespace PYNAS_CELL_ISA
}  // namespace cell
}  // namespace pynas
