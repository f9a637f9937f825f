// The tree-cell passes compiled for the avx2 instruction set. CMakeLists.txt adds the ISA flags
// and defines PYNAS_CELL_BUILD_AVX2 on x86-64; elsewhere this table is the generic one.
// Only plain headers here: no ATen, so no inline library code is emitted with avx2 instructions.
#if defined(PYNAS_CELL_BUILD_AVX2)
#define PYNAS_CELL_ISA isa_avx2
#include "ops/cell/cell_pass.h"
#else
#include "ops/cell/cell_kernels.h"
#endif

namespace pynas {
namespace cell {

#if defined(PYNAS_CELL_BUILD_AVX2)
PassTable pass_table_avx2() { return isa_avx2::make_pass_table("avx2"); }
#else
PassTable pass_table_avx2() { return pass_table_generic(); }
#endif

}  // namespace cell
}  // namespace pynas
