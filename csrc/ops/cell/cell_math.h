// Per-element math of the base-N tree cell: the program layout, each combine and activation,
// and their derivatives. Plain arithmetic only (no ATen, no intrinsics), so the same code is
// compiled by the host compiler (and auto-vectorised in the CPU pass) and by nvcc for a CUDA
// kernel (functions are __host__ __device__ there).
//
// Program layout (one row of the int64 program tensor, built by pynas.ops.tree_cell.cell_program):
//   [0] base N   [1] c_out   [2] inject_at   [3] inject op   [4 + k] op of node k, k = 0..2N-2
// where op = combine * 4 + activation, combine in {add=0, elem_mult=1},
// activation in {identity=0, tanh=1, sigmoid=2, relu=3}.
//
// Everything lives in an inline namespace named after the instruction set the translation unit
// is compiled for (PYNAS_CELL_ISA), so that the generic and the AVX2 copies of these inline
// functions never collide at link time.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYNAS_HD __host__ __device__ __forceinline__
#else
#define PYNAS_HD inline __attribute__((always_inline))
#endif

#ifndef PYNAS_CELL_ISA
#define PYNAS_CELL_ISA isa_generic
#endif

namespace pynas {
namespace cell {
inline namespace PYNAS_CELL_ISA {

// ----- program layout --------------------------------------------------------------------------
constexpr int kProgBase = 0;
constexpr int kProgCOut = 1;
constexpr int kProgInjectAt = 2;
constexpr int kProgInjectOp = 3;
constexpr int kProgNodes = 4;
constexpr int kMaxBase = 16;
constexpr int kMaxNodes = 2 * kMaxBase - 1;
constexpr int kNumOps = 8;

enum Combine : int { kAdd = 0, kMul = 1 };
enum Act : int { kIdentity = 0, kTanh = 1, kSigmoid = 2, kRelu = 3 };

PYNAS_HD constexpr int program_length(int base) { return kProgNodes + 2 * base - 1; }
PYNAS_HD constexpr int op_combine(int64_t op) { return static_cast<int>(op >> 2); }
PYNAS_HD constexpr int op_act(int64_t op) { return static_cast<int>(op & 3); }

// ----- float32: vectorisable exp / tanh / sigmoid ----------------------------------------------
PYNAS_HD float int_bits_as_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  return __builtin_bit_cast(float, i);
#endif
}

// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2; exp(r) = 1 + r + r^2 P(r) with a
// degree-4 polynomial fitted on Chebyshev nodes (relative error 4e-9 before rounding). The input
// is clamped to [-87, 88] so that 2^n stays a normal float; NaN propagates.
PYNAS_HD float exp_f32(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float t = x * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (|t| < 2^22)
  float r = x - n * 0.693359375f;                    // ln 2 split in a short head ...
  r = r + n * 2.12194440054690583e-4f;               // ... and a correction
  float p = 0.0013751407386735082f;
  p = p * r + 0.008368915878236294f;
  p = p * r + 0.04166953265666962f;
  p = p * r + 0.166665181517601f;
  p = p * r + 0.49999988079071045f;
  const float e = (r * r) * p + r + 1.0f;
  const int32_t biased = static_cast<int32_t>(n) + 127;
  return e * int_bits_as_float(biased << 23);
}

// tanh: x P(x^2) / Q(x^2), a degree 11/6 rational fitted (Loeb-weighted least squares) on
// [0, 7.905]; the input is clamped to that range, where tanh rounds to +-1 in float32.
// Max error 5 ulp (3e-7 absolute, near |x| = 7.75), exact sign and odd symmetry; NaN propagates.
PYNAS_HD float tanh_f32(float x) {
  constexpr float kClamp = 7.90531110763549805f;
  x = x > kClamp ? kClamp : x;
  x = x < -kClamp ? -kClamp : x;
  const float z = x * x;
  float p = 2.429426105e-11f;
  p = p * z - 1.498030093e-08f;
  p = p * z + 9.964268800e-06f;
  p = p * z + 2.994896007e-03f;
  p = p * z + 1.298753973e-01f;
  p = p * z + 9.999999941e-01f;
  float q = 2.384703620e-04f;
  q = q * z + 2.406462674e-02f;
  q = q * z + 4.632086227e-01f;
  q = q * z + 1.0f;
  return x * p / q;
}

PYNAS_HD float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// ----- per-type dispatch: float32 uses the functions above, float64 the C library -----------------
template <typename T>
struct Math;

template <>
struct Math<float> {
  static PYNAS_HD float tanh(float x) { return tanh_f32(x); }
  static PYNAS_HD float sigmoid(float x) { return sigmoid_f32(x); }
};

template <>
struct Math<double> {
  static PYNAS_HD double tanh(double x) { return ::tanh(x); }
  static PYNAS_HD double sigmoid(double x) { return 1.0 / (1.0 + ::exp(-x)); }
};

// ----- combines ---------------------------------------------------------------------------------
template <int C, typename T>
PYNAS_HD T combine(T left, T right) {
  if constexpr (C == kAdd) {
    return left + right;
  } else {
    return left * right;
  }
}

// d combine / d left, given the right operand (d / d right is symmetric).
template <int C, typename T>
PYNAS_HD T combine_partial(T other) {
  if constexpr (C == kAdd) {
    return T(1);
  } else {
    return other;
  }
}

// ----- activations ------------------------------------------------------------------------------
template <int A, typename T>
PYNAS_HD T activate(T x) {
  if constexpr (A == kIdentity) {
    return x;
  } else if constexpr (A == kTanh) {
    return Math<T>::tanh(x);
  } else if constexpr (A == kSigmoid) {
    return Math<T>::sigmoid(x);
  } else {
    return x > T(0) ? x : T(0);
  }
}

// d act / d pre, written in terms of the activation's OUTPUT y (as torch's own backward formulas
// are: tanh 1 - y^2, sigmoid y (1 - y), relu [y > 0]).
template <int A, typename T>
PYNAS_HD T activate_grad(T y) {
  if constexpr (A == kIdentity) {
    return T(1);
  } else if constexpr (A == kTanh) {
    return T(1) - y * y;
  } else if constexpr (A == kSigmoid) {
    return y * (T(1) - y);
  } else {
    return y > T(0) ? T(1) : T(0);
  }
}

// Runtime-op versions (a switch per element) for code that cannot hoist the op out of its loop,
// e.g. one CUDA thread walking the whole tree.
template <typename T>
PYNAS_HD T combine_rt(int c, T left, T right) {
  return c == kAdd ? left + right : left * right;
}

template <typename T>
PYNAS_HD T activate_rt(int a, T x) {
  switch (a) {
    case kTanh:
      return activate<kTanh>(x);
    case kSigmoid:
      return activate<kSigmoid>(x);
    case kRelu:
      return activate<kRelu>(x);
    default:
      return x;
  }
}

template <typename T>
PYNAS_HD T activate_grad_rt(int a, T y) {
  switch (a) {
    case kTanh:
      return activate_grad<kTanh>(y);
    case kSigmoid:
      return activate_grad<kSigmoid>(y);
    case kRelu:
      return activate_grad<kRelu>(y);
    default:
      return T(1);
  }
}

}  // namespace PYNAS_CELL_ISA
}  // namespace cell
}  // namespace pynas
