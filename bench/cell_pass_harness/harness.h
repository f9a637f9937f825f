// The tree-cell elementwise pass timed alone (bench/cell_bench.py --harness): no torch, one
// thread, data in cache. Each variant.cpp object is one build of csrc/ops/cell/cell_pass.h (a
// source tree x an instruction set) and registers its pass table here.
#pragma once

#include <string>
#include <vector>

#include "ops/cell/cell_kernels.h"

namespace harness {

struct Variant {
  std::string name;
  pynas::cell::PassTable table;
};

std::vector<Variant>& variants();

inline bool register_variant(const char* name, pynas::cell::PassTable table) {
  variants().push_back({name, table});
  return true;
}

}  // namespace harness
