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
PYNAS_HD float int_bits_as_float(uint32_t i) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(i);
#else
  return __builtin_bit_cast(float, i);
#endif
}

PYNAS_HD uint32_t float_bits_as_int(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return __builtin_bit_cast(uint32_t, x);
#endif
}

// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2; exp(r) = 1 + r + r^2 P(r) with a
// degree-4 polynomial fitted on Chebyshev nodes (relative error 4e-9 before rounding, 8e-8
// after). Edges, with no extra work per element:
// - x is clamped to [kLo, kHi] by comparisons that let NaN through; a NaN then stays NaN in r
//   and in the result;
// - n is read from the bits of the rounding sum (integer arithmetic on a bit pattern, defined
//   for every input, NaN included: no float -> int conversion);
// - at kHi, n = 128 makes the scale 2^n the bit pattern of +Inf: exp(x) = +Inf from x = 88.38
//   on (true overflow starts at 88.72; in between the true value is above 2.4e38) and at +Inf;
// - at kLo, n = -127 makes the scale the bit pattern 0: exp(x) = 0 below x = -87.68 (true values
//   there are denormals below 8.2e-39) and at -Inf.
PYNAS_HD float exp_f32(float x) {
  constexpr float kLo = -88.0f;
  constexpr float kHi = 88.8f;
  x = x < kLo ? kLo : x;
  x = x > kHi ? kHi : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: x / ln 2 + kRound has n in its low bits
  const float rounded = x * 1.44269504088896341f + kRound;
  const float n = rounded - kRound;  // round(x / ln 2)
  float r = x - n * 0.693359375f;    // ln 2 split in a short head ...
  r = r + n * 2.12194440054690583e-4f;  // ... and a correction
  float p = 0.0013751407386735082f;
  p = p * r + 0.008368915878236294f;
  p = p * r + 0.04166953265666962f;
  p = p * r + 0.166665181517601f;
  p = p * r + 0.49999988079071045f;
  const float e = (r * r) * p + r + 1.0f;
  const uint32_t biased = float_bits_as_int(rounded) - float_bits_as_int(kRound) + 127u;
  return e * int_bits_as_float(biased << 23);
}

// tanh: x P(x^2) / Q(x^2), a degree 11/6 rational fitted (Loeb-weighted least squares) on
// [0, 7.905]; max error 5 ulp with FMA contraction, 6 without (3e-7 absolute), exact sign and odd
// symmetry. Beyond the fitted range (where the rational would pass 1, and be Inf / Inf = NaN at
// huge |x|) the result is selected as exactly +-1: so tanh(+-Inf) = +-1 and its derivative
// 1 - y^2 = 0 there, as torch's float32 tanh from |x| = 9.01 on (in between, torch's is at most
// 4 ulp below 1). A NaN fails the comparison and propagates.
PYNAS_HD float tanh_f32(float x) {
  constexpr float kFitted = 7.90531110763549805f;
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
  const float y = x * p / q;
  return fabsf(x) > kFitted ? copysignf(1.0f, x) : y;
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
// Non-finite values behave as in torch's own ops, which the reference cell uses: every
// activation propagates NaN; relu(x) is `x < 0 ? 0 : x` (NaN and -0.0 pass unchanged, as
// torch.relu gives them), tanh/sigmoid saturate to +-1 / 0, 1 at +-Inf.
template <int A, typename T>
PYNAS_HD T activate(T x) {
  if constexpr (A == kIdentity) {
    return x;
  } else if constexpr (A == kTanh) {
    return Math<T>::tanh(x);
  } else if constexpr (A == kSigmoid) {
    return Math<T>::sigmoid(x);
  } else {
    return x < T(0) ? T(0) : x;
  }
}

// Gradient into the pre-activation given the gradient g of the activation's OUTPUT y, with
// torch's backward formulas term for term (so that Inf and NaN in g or y combine the same way):
// tanh_backward g (1 - y^2), sigmoid_backward g (1 - y) y, and relu's threshold_backward, a
// select rather than a product: 0 where y <= 0 (even for g = NaN or Inf), g elsewhere (also
// where y is NaN).
template <int A, typename T>
PYNAS_HD T activate_backward(T g, T y) {
  if constexpr (A == kIdentity) {
    return g;
  } else if constexpr (A == kTanh) {
    return g * (T(1) - y * y);
  } else if constexpr (A == kSigmoid) {
    return g * (T(1) - y) * y;
  } else {
    return y <= T(0) ? T(0) : g;
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
PYNAS_HD T activate_backward_rt(int a, T g, T y) {
  switch (a) {
    case kTanh:
      return activate_backward<kTanh>(g, y);
    case kSigmoid:
      return activate_backward<kSigmoid>(g, y);
    case kRelu:
      return activate_backward<kRelu>(g, y);
    default:
      return g;
  }
}

}  // namespace PYNAS_CELL_ISA
}  // namespace cell
}  // namespace pynas
