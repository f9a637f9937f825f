"""Thin Python layer over the compiled ops: fake kernels, autograd, friendly wrappers, and the
pure-PyTorch reference of each op (beside it, as extension-cpp keeps its reference)."""

from pynas.ops.reference_cell import reference_cell_sequence, reference_cell_step
from pynas.ops.skip_concat import skip_concat, skip_concat_reference
from pynas.ops.tree_cell import (
    cell_program,
    program_to_cell,
    stack_programs,
    tree_cell_isa,
    tree_cell_sequence,
    tree_cell_sequence_reference,
)

__all__ = [
    "cell_program",
    "program_to_cell",
    "reference_cell_sequence",
    "reference_cell_step",
    "skip_concat",
    "skip_concat_reference",
    "stack_programs",
    "tree_cell_isa",
    "tree_cell_sequence",
    "tree_cell_sequence_reference",
]
