"""Every CUDA source under csrc/ compiles with nvcc against the installed torch's headers.

No GPU is needed: this is the check that the CUDA kernels (built by CMakeLists.txt only where
torch is a CUDA build and a CUDA compiler exists) at least compile, wherever nvcc is installed.
The flags are the ones CMakeLists.txt gives nvcc: C++17, torch's cpp_extension nvcc flags
(COMMON_NVCC_FLAGS), torch's and Python's headers as system headers; warnings are errors.

A CPU build of torch ships the c10/cuda headers but not the one the CUDA build generates,
c10/cuda/impl/cuda_cmake_macros.h (a single `#define C10_CUDA_BUILD_SHARED_LIBS` in every CUDA
wheel); against a CPU torch the test writes that header into a directory of its own. Nothing
else is substituted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

REPO = Path(__file__).resolve().parents[2]
CUDA_SOURCES = sorted((REPO / "csrc").rglob("*.cu"))
GENERATED_HEADER = Path("c10/cuda/impl/cuda_cmake_macros.h")


def find_nvcc() -> str | None:
    on_path = shutil.which("nvcc")
    if on_path:
        return on_path
    home = cpp_extension.CUDA_HOME
    candidate = Path(home, "bin", "nvcc") if home else None
    return str(candidate) if candidate and candidate.is_file() else None


NVCC = find_nvcc()
pytestmark = pytest.mark.skipif(
    NVCC is None,
    reason=(
        "nvcc not found (not on PATH, and CUDA_HOME="
        f"{cpp_extension.CUDA_HOME!r} has no bin/nvcc): the CUDA kernels in csrc/ cannot be "
        "compile-checked on this machine"
    ),
)


def nvcc_command(source: Path, output: Path, shim: Path | None) -> list[str]:
    includes = [*cpp_extension.include_paths(), sysconfig.get_paths()["include"]]
    if shim is not None:
        includes.append(str(shim))
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [
        str(NVCC), "-std=c++17", "-c", str(source), "-o", str(output),
        f"-I{REPO / 'csrc'}", *(f"-isystem={path}" for path in includes),
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *cpp_extension.COMMON_NVCC_FLAGS,
        "-Xcompiler=-fPIC,-Wall,-Wno-unused-parameter,-Werror", "--Werror=all-warnings",
    ]  # fmt: skip


def test_there_are_cuda_sources():
    names = {p.name for p in CUDA_SOURCES}
    assert {"tree_cell_cuda.cu", "skip_concat_cuda.cu"} <= names


def test_every_cuda_source_compiles(tmp_path):
    shim = None
    if not any((Path(d) / GENERATED_HEADER).is_file() for d in cpp_extension.include_paths()):
        shim = tmp_path / "generated"
        (shim / GENERATED_HEADER).parent.mkdir(parents=True)
        (shim / GENERATED_HEADER).write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    commands = [
        nvcc_command(source, tmp_path / f"{source.stem}.o", shim) for source in CUDA_SOURCES
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with ThreadPoolExecutor(max_workers=2) as pool:  # the files compile independently
        results = list(
            pool.map(
                lambda cmd: subprocess.run(cmd, capture_output=True, text=True, env=env),
                commands,
            )
        )
    failures = [
        f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}"
        for cmd, result in zip(commands, results, strict=True)
        if result.returncode != 0 or not Path(cmd[cmd.index("-o") + 1]).is_file()
    ]
    assert not failures, "nvcc failed:\n\n" + "\n\n".join(failures)
