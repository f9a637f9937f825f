// The tree-cell passes compiled for the generic instruction set (flags set in CMakeLists.txt).
// Only plain headers here: no ATen, so no inline library code is emitted with generic instructions.
#define PYNAS_CELL_ISA isa_generic
#include "ops/cell/cell_pass.h"

namespace pynas {
namespace cell {

PassTable pass_table_generic() { return isa_generic::make_pass_table("generic"); }

}  // namespace cell
}  // namespace pynas
