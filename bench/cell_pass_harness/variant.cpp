// One build of the tree-cell pass for the harness. Compiled once per (source tree, instruction
// set) with -DPYNAS_CELL_ISA=<unique namespace> -DHARNESS_VARIANT_NAME="<name>" and the ISA flags
// that CMakeLists.txt gives csrc/ops/cell/cell_pass_*.cpp; the unique inline namespace keeps the
// builds apart at link time.
#include "ops/cell/cell_pass.h"
#include "harness.h"

namespace {
const bool registered = harness::register_variant(
    HARNESS_VARIANT_NAME, pynas::cell::PYNAS_CELL_ISA::make_pass_table(HARNESS_VARIANT_NAME));
}  // namespace
