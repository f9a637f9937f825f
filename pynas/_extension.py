"""Loading the compiled extension ``pynas._C``, and what its build records.

``pynas/__init__.py`` calls :func:`load` before anything registers fake kernels or autograd for
the ops, so that these traps end in an ImportError that says what happened and what to do,
instead of ``RuntimeError: operator pynas::skip_concat does not exist`` later:

- importing pynas from its source tree (e.g. running Python in the repository root after a plain
  ``pip install .``): the source ``pynas/`` shadows the installed package and has no ``_C``;
- an extension built against another torch than the one imported now;
- an extension built from other sources than this Python code (e.g. an editable install that was
  not rebuilt after a ``git pull``): its op schemas are not the ones registered here.

The build records both in ``_C`` (``TORCH_VERSION``, ``OPS_VERSION``, see csrc/module.cpp).
Run as a script, this file prints what CMakeLists.txt needs to know about the torch it builds
against (it imports torch only, never pynas).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

#: Version of the op schemas (csrc/ops/schemas.cpp) this Python code registers fake kernels and
#: autograd for. Bump it with every schema change: the build compiles it into ``_C``, and an
#: extension with another number is refused at import as stale.
OPS_VERSION = 2

_PACKAGE_DIR = Path(__file__).resolve().parent
REBUILD_HINT = "pip install --no-build-isolation -e .  (or without -e for a regular install)"


def load() -> ModuleType:
    """Import ``pynas._C`` (registering the ops) and check that it fits torch and this code."""
    import torch

    try:
        extension = importlib.import_module("pynas._C")
    except ModuleNotFoundError as error:
        if error.name != "pynas._C":
            raise
        raise ImportError(_missing_message()) from None
    except ImportError as error:  # e.g. undefined symbols: built against another libtorch
        raise ImportError(
            f"pynas's compiled extension could not be loaded: {error}\n"
            f"It was most likely built against another torch than torch {torch.__version__}, "
            f"which is imported now. Rebuild it against this torch (in {_repository_hint()}):\n"
            f"    {REBUILD_HINT}"
        ) from error
    check(extension, torch.__version__)
    return extension


def check(extension: ModuleType, torch_version: str) -> None:
    """Raise ImportError if `extension` was built against another torch or other sources."""
    built_torch = getattr(extension, "TORCH_VERSION", None)
    built_ops = getattr(extension, "OPS_VERSION", None)
    where = getattr(extension, "__file__", "pynas._C")
    if built_torch is None or built_ops is None:
        raise ImportError(
            f"pynas's compiled extension {where} is stale: it records no build information, so "
            f"it was built by an older pynas than this Python code ({_PACKAGE_DIR}). Rebuild it "
            f"(in {_repository_hint()}):\n    {REBUILD_HINT}"
        )
    if built_torch != torch_version:
        raise ImportError(
            f"pynas's compiled extension {where} was built against torch {built_torch}, but "
            f"torch {torch_version} is imported: a C++ extension must be built against the torch "
            f"it runs with. Rebuild it with this torch installed (in {_repository_hint()}):\n"
            f"    {REBUILD_HINT}"
        )
    if built_ops != OPS_VERSION:
        raise ImportError(
            f"pynas's compiled extension {where} is stale: it was built from sources with op "
            f"schema version {built_ops}, but this Python code ({_PACKAGE_DIR}) expects version "
            f"{OPS_VERSION} (the C++ sources changed since it was built). Rebuild it (in "
            f"{_repository_hint()}):\n    {REBUILD_HINT}"
        )


def _source_tree() -> Path | None:
    """The repository root if this package is the one in a pynas source tree."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "csrc").is_dir():
        return root
    return None


def _repository_hint() -> str:
    root = _source_tree()
    return str(root) if root else "the pynas source directory"


def _missing_message() -> str:
    root = _source_tree()
    if root is None:
        return (
            f"pynas's compiled extension (pynas/_C*.so) is missing from {_PACKAGE_DIR}: the "
            "installation is incomplete. Reinstall pynas from its source directory:\n"
            f"    {REBUILD_HINT}"
        )
    return (
        f"pynas is being imported from its source tree ({_PACKAGE_DIR}), which holds no "
        "compiled extension: the C++ core is built into the installed package, not into the "
        "source tree. This happens when Python runs in the repository root after a plain "
        "`pip install .` (the source tree then shadows the installed pynas). Either run Python "
        f"from another directory than {root}, or install pynas in editable mode there, so that "
        "the source tree gets its extension:\n"
        "    pip install --no-build-isolation -e ."
    )


# ----- build information for CMakeLists.txt ------------------------------------------------------

# TORCH_CUDA_ARCH_LIST's named architectures, in its own notation (as torch.utils.cpp_extension
# reads them).
_NAMED_CUDA_ARCHS = {
    "Kepler+Tesla": "3.7",
    "Kepler": "3.5+PTX",
    "Maxwell+Tegra": "5.3",
    "Maxwell": "5.0;5.2+PTX",
    "Pascal": "6.0;6.1+PTX",
    "Volta+Tegra": "7.2",
    "Volta": "7.0+PTX",
    "Turing": "7.5+PTX",
    "Ampere+Tegra": "8.7",
    "Ampere": "8.0;8.6+PTX",
    "Ada": "8.9+PTX",
    "Hopper": "9.0+PTX",
    "Blackwell+Tegra": "11.0",
    "Blackwell": "10.0;10.3;12.0;12.1+PTX",
}

#: Architectures built when nothing says otherwise and no GPU is visible: machine code for
#: Turing through Hopper (every GPU that CUDA 12 and 13 both support) and PTX of the newest, which
#: the driver compiles for later GPUs.
DEFAULT_CUDA_ARCHITECTURES = "75-real;80-real;86-real;89-real;90"


def cmake_cuda_architectures(torch_arch_list: str) -> str:
    """TORCH_CUDA_ARCH_LIST ("8.0;8.6+PTX", "7.5 8.0", "Ampere", "9.0a") in the notation of
    CMake's CUDA_ARCHITECTURES ("80-real;86"): X.Y is machine code only (XY-real), X.Y+PTX
    machine code and PTX (XY)."""
    ptx: dict[str, bool] = {}  # architecture number -> also PTX; in the order given
    for entry in re.split(r"[;\s]+", torch_arch_list.strip()):
        if not entry:
            continue
        for arch in _NAMED_CUDA_ARCHS.get(entry, entry).split(";"):
            match = re.fullmatch(r"(\d+)\.(\d+)([af]?)(\+PTX)?", arch)
            if match is None:
                raise ValueError(
                    f"TORCH_CUDA_ARCH_LIST entry {arch!r} is not an architecture such as 8.6, "
                    f"9.0a or 8.6+PTX, nor one of {', '.join(_NAMED_CUDA_ARCHS)}"
                )
            number = match[1] + match[2] + match[3]
            ptx[number] = ptx.get(number, False) or match[4] is not None
    if not ptx:
        raise ValueError(f"TORCH_CUDA_ARCH_LIST {torch_arch_list!r} names no architecture")
    return ";".join(number if with_ptx else f"{number}-real" for number, with_ptx in ptx.items())


def _visible_gpu_architectures(torch: ModuleType) -> str:
    """The architectures of the GPUs this machine has (as CMake's `native` would pick, which
    needs CMake 3.24), or "" when torch sees none."""
    try:
        if not torch.cuda.is_available():
            return ""
        capabilities = {
            torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())
        }
    except (RuntimeError, AssertionError):
        return ""
    return ";".join(f"{major}{minor}" for major, minor in sorted(capabilities))


def build_info(torch_arch_list: str | None) -> dict[str, str]:
    """What CMakeLists.txt needs about the torch it builds against; for a CUDA build of torch
    also the CUDA architectures to build for, and why: from `torch_arch_list`
    (TORCH_CUDA_ARCH_LIST) if given, else the GPUs of this machine, else a default list."""
    import os

    import torch
    from torch.utils import cpp_extension

    info = {
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda or "",
        "cxx11_abi": str(int(torch._C._GLIBCXX_USE_CXX11_ABI)),
        "library_dir": os.path.join(os.path.dirname(torch.__file__), "lib"),
        "include_dirs": "|".join(cpp_extension.include_paths()),
        "ops_version": str(OPS_VERSION),
    }
    if not info["torch_cuda"]:
        return info
    if torch_arch_list:
        info["cuda_archs"] = cmake_cuda_architectures(torch_arch_list)
        info["cuda_archs_from"] = f"TORCH_CUDA_ARCH_LIST={torch_arch_list}"
    else:
        visible = _visible_gpu_architectures(torch)
        info["cuda_archs"] = visible or DEFAULT_CUDA_ARCHITECTURES
        info["cuda_archs_from"] = (
            "the GPUs of this machine" if visible else "pynas's default (no GPU visible)"
        )
    return info


def _main() -> int:
    import os

    # Run as a script, Python put this file's folder (pynas/) first on sys.path: its modules
    # (ops, nn, train, ...) must not shadow anything that torch imports.
    if sys.path and Path(sys.path[0] or ".").resolve() == _PACKAGE_DIR:
        del sys.path[0]
    try:
        info = build_info(os.environ.get("TORCH_CUDA_ARCH_LIST"))
    except ValueError as error:
        print(f"error={error}")
        return 1
    for key, value in info.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
