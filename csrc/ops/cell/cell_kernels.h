// Interface between the ATen driver (tree_cell_cpu.cpp) and the elementwise tree passes, which
// are compiled once per instruction set (cell_pass_*.cpp) and picked at run time.
// Plain pointers and integers only: this header must not pull ATen into the ISA-specific files.
#pragma once

#include <cstdint>

namespace pynas {
namespace cell {

// One time step of the forward pass over rows [0, B) and hidden units [0, H).
// All row-major, contiguous: xp/hp [B, N*H], c_prev/h/c [B, H].
template <typename T>
struct ForwardStep {
  const T* xp;
  const T* hp;
  const T* c_prev;
  T* h;  // h_t
  T* c;  // c_t (pre-activation of node c_out)
  const int64_t* programs;     // [P, L]
  const int64_t* row_program;  // [B]
  int64_t batch, hidden, base, prog_len;
};

// One time step of the backward pass: recomputes the tree from xp, hp, c_prev and backpropagates
// dh (+ dh_extra) into h_t and dc into c_t. dc is read and then overwritten with d c_{t-1}.
template <typename T>
struct BackwardStep {
  const T* xp;
  const T* hp;
  const T* c_prev;
  const T* dh;        // [B, H] gradient into h_t from step t+1 (or from h_T)
  const T* dh_extra;  // [B, H] gradient of the step's output hs[t]; may be null
  T* dc;              // [B, H] in: gradient into c_t; out: gradient into c_{t-1}
  T* dxp;             // [B, N*H]
  T* dhp;             // [B, N*H]
  const int64_t* programs;
  const int64_t* row_program;
  int64_t batch, hidden, base, prog_len;
};

// Work is split into items = (row, block of hidden units); a pass runs items [begin, end).
struct Blocking {
  int64_t block;       // hidden units per block (<= kBlock)
  int64_t num_blocks;  // per row
};

constexpr int64_t kBlock = 128;

inline Blocking make_blocking(int64_t hidden) {
  int64_t nb = (hidden + kBlock - 1) / kBlock;
  if (nb < 1) nb = 1;
  int64_t bs = (hidden + nb - 1) / nb;
  bs = ((bs + 15) / 16) * 16;  // whole vectors in every block but the last
  if (bs > kBlock) bs = kBlock;
  return {bs, (hidden + bs - 1) / bs};
}

struct PassTable {
  const char* isa;
  void (*forward_f32)(const ForwardStep<float>&, Blocking, int64_t, int64_t);
  void (*forward_f64)(const ForwardStep<double>&, Blocking, int64_t, int64_t);
  void (*backward_f32)(const BackwardStep<float>&, Blocking, int64_t, int64_t);
  void (*backward_f64)(const BackwardStep<double>&, Blocking, int64_t, int64_t);
};

// Defined in cell_pass_generic.cpp / cell_pass_avx2.cpp / cell_pass_avx512.cpp.
PassTable pass_table_generic();
PassTable pass_table_avx2();
PassTable pass_table_avx512();

}  // namespace cell
}  // namespace pynas
