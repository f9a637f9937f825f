// Every op's schema in one place; kernels register per backend in their own folders,
// fake kernels and autograd live in Python (pynas/ops/).
#include <torch/library.h>

TORCH_LIBRARY(pynas, m) {
  // Zero-pad NCHW maps at the bottom/right to the largest height and width, concat channels.
  m.def("skip_concat(Tensor[] inputs) -> Tensor");
  m.def("skip_concat_backward(Tensor grad, int[] channels, int[] heights, int[] widths) -> Tensor[]");
}
