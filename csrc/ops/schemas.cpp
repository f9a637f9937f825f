// Every op's schema in one place; kernels register per backend in their own folders,
// fake kernels and autograd live in Python (pynas/ops/). Ops and arguments with a leading
// underscore are internal (backward ops, buffer donation), as in torchvision: they are called by
// pynas's autograd formulas and may change without notice. Changing any schema here means
// bumping OPS_VERSION in pynas/_extension.py (the import check then refuses a stale build).
#include <torch/library.h>

TORCH_LIBRARY(pynas, m) {
  // Zero-pad NCHW maps at the bottom/right to the largest height and width, concat channels.
  m.def("skip_concat(Tensor[] inputs) -> Tensor");
  m.def("_skip_concat_backward(Tensor grad, int[] channels, int[] heights, int[] widths) -> Tensor[]");

  // A whole truncated-BPTT window of a base-N tree cell (SPEC §2, §8). xproj [T, B, N*H] input
  // projections, h0/c0 [B, H], weight_hh [H, N*H], programs [P, 2N+3] int (one architecture per
  // row, see csrc/ops/cell/cell_math.h), row_program [B] int (which program each batch row runs).
  // Returns h for every step [T, B, H], h_T, c_T, and what the backward needs: the recurrent
  // projections hp_all [T, B, N*H] and c for every step cs [T, B, H] (both empty when
  // save_for_backward is false). _donate_saved (internal): the caller does not keep hp_all, so
  // autograd's backward may overwrite it with grad_xproj when the graph is not retained.
  m.def(
      "tree_cell_seq(Tensor xproj, Tensor h0, Tensor c0, Tensor weight_hh, Tensor programs, "
      "Tensor row_program, bool save_for_backward=True, bool _donate_saved=False) "
      "-> (Tensor hs, Tensor h_last, Tensor c_last, Tensor hp_all, Tensor cs)");
  // Gradients for xproj, h0, c0 and weight_hh; recomputes the tree from the saved projections.
  // The gradient of weight_hh is summed with one GEMM per weight_grad_chunk steps (0: one GEMM
  // over all steps after the loop; a chunk bounds the buffer of recurrent-projection gradients).
  m.def(
      "_tree_cell_seq_backward(Tensor grad_hs, Tensor grad_h_last, Tensor grad_c_last, "
      "Tensor xproj, Tensor h0, Tensor c0, Tensor weight_hh, Tensor programs, Tensor row_program, "
      "Tensor hs, Tensor hp_all, Tensor cs, int weight_grad_chunk=0) "
      "-> (Tensor grad_xproj, Tensor grad_h0, Tensor grad_c0, Tensor grad_weight_hh)");
  // The same backward, writing grad_xproj over hp_all (which must not be needed again: autograd
  // uses it when the graph is not retained) instead of allocating a [T, B, N*H] buffer.
  m.def(
      "_tree_cell_seq_backward_donate(Tensor grad_hs, Tensor grad_h_last, Tensor grad_c_last, "
      "Tensor xproj, Tensor h0, Tensor c0, Tensor weight_hh, Tensor programs, "
      "Tensor row_program, Tensor hs, Tensor(a!) hp_all, Tensor cs, int weight_grad_chunk=0) "
      "-> (Tensor grad_h0, Tensor grad_c0, Tensor grad_weight_hh)");
  // Which compiled elementwise pass the tree-cell op uses here ("generic", "avx2", "avx512").
  m.def("tree_cell_isa() -> str");
}
