"""The import check of the compiled extension (pynas/_extension.py) and what the build records.

Missing extension: a copy of the package without `_C`, imported in a fresh interpreter, as after
a plain `pip install .` with Python started in the repository root. Stale extension: the real
`_C` checked against a different torch version or op-schema version than the ones it recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import pynas
from pynas import _extension

REPO = Path(__file__).resolve().parents[1]

# sha256 of the sorted schemas of every pynas op, per OPS_VERSION. If the schemas change, bump
# OPS_VERSION in pynas/_extension.py (so that stale builds are refused) and record the new value.
SCHEMA_FINGERPRINTS = {
    2: "ec2b211382d0f5542e7840fe41e61b7d2574ba594365de815408cbe4ad0cf703",
}


def copy_package(dest: Path, with_extension: bool) -> Path:
    """A copy of the pynas package under `dest` (with or without the built `_C`)."""
    target = dest / "pynas"
    shutil.copytree(
        REPO / "pynas", target, ignore=shutil.ignore_patterns("__pycache__", "_C.*", "_C")
    )
    if with_extension:
        shutil.copy2(pynas._C.__file__, target / Path(pynas._C.__file__).name)
    return target


def import_in_fresh_python(path: Path, code: str = "import pynas") -> subprocess.CompletedProcess:
    """Runs `code` with `path` first on sys.path. `-S` skips site processing, so that the
    editable install of this checkout (a meta-path hook) cannot serve pynas; site-packages is
    put back on the path by hand for torch and numpy."""
    site_packages = sysconfig.get_paths()["purelib"]
    script = f"import sys; sys.path[:0] = [{str(path)!r}, {site_packages!r}]\n{code}"
    return subprocess.run(
        [sys.executable, "-S", "-c", script], cwd=path, capture_output=True, text=True
    )


def test_import_from_a_source_tree_says_what_to_do(tmp_path):
    copy_package(tmp_path, with_extension=False)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'pynas'\n")
    (tmp_path / "csrc").mkdir()
    proc = import_in_fresh_python(tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()
    assert any(line.startswith("ImportError: pynas is being imported from its source tree")
               for line in last), proc.stderr  # fmt: skip
    assert "operator pynas::" not in proc.stderr
    assert "run Python from another directory" in proc.stderr
    assert "pip install --no-build-isolation -e ." in proc.stderr


def test_an_installation_without_the_extension_says_so(tmp_path):
    copy_package(tmp_path, with_extension=False)
    proc = import_in_fresh_python(tmp_path)
    assert proc.returncode != 0
    assert "ImportError: pynas's compiled extension (pynas/_C*.so) is missing" in proc.stderr
    assert "installation is incomplete" in proc.stderr


def test_a_stale_extension_is_refused_at_import(tmp_path):
    """The real `_C` next to Python code that expects another op-schema version (as after a
    `git pull` that changed the schemas, without rebuilding)."""
    package = copy_package(tmp_path, with_extension=True)
    source = (package / "_extension.py").read_text()
    line = f"OPS_VERSION = {_extension.OPS_VERSION}\n"
    assert line in source
    (package / "_extension.py").write_text(source.replace(line, "OPS_VERSION = 999\n"))
    proc = import_in_fresh_python(tmp_path)
    assert proc.returncode != 0
    assert "ImportError: pynas's compiled extension" in proc.stderr
    assert f"op schema version {_extension.OPS_VERSION}" in proc.stderr
    assert "expects version 999" in proc.stderr
    # The same copy with the matching version imports and runs an op.
    (package / "_extension.py").write_text(source)
    ok = import_in_fresh_python(
        tmp_path, "import pynas, torch; print(pynas.ops.skip_concat([torch.ones(1, 1, 1, 1)]))"
    )
    assert ok.returncode == 0, ok.stderr


def test_the_build_records_torch_and_the_schema_version():
    assert pynas._C.TORCH_VERSION == torch.__version__
    assert pynas._C.OPS_VERSION == _extension.OPS_VERSION


def test_an_extension_built_for_another_torch_is_refused():
    with pytest.raises(ImportError, match=r"built against torch .* but torch 2\.99\.0 is imported"):
        _extension.check(pynas._C, "2.99.0")


def test_an_extension_from_other_sources_is_refused(monkeypatch):
    monkeypatch.setattr(_extension, "OPS_VERSION", _extension.OPS_VERSION + 1)
    with pytest.raises(ImportError, match="stale: it was built from sources with op schema"):
        _extension.check(pynas._C, torch.__version__)


def test_an_extension_without_build_records_is_refused():
    old = SimpleNamespace(__file__="/somewhere/pynas/_C.so")
    with pytest.raises(ImportError, match="records no build information"):
        _extension.check(old, torch.__version__)


def test_op_schema_changes_come_with_a_new_ops_version():
    schemas = sorted(
        str(s) for s in torch._C._jit_get_all_schemas() if s.name.startswith("pynas::")
    )
    assert any(s.startswith("pynas::_tree_cell_seq_backward(") for s in schemas), schemas
    fingerprint = hashlib.sha256("\n".join(schemas).encode()).hexdigest()
    assert SCHEMA_FINGERPRINTS.get(_extension.OPS_VERSION) == fingerprint, (
        "the op schemas (csrc/ops/schemas.cpp) are not the ones recorded for OPS_VERSION "
        f"{_extension.OPS_VERSION}: bump OPS_VERSION in pynas/_extension.py and record "
        f"{fingerprint!r} for it in SCHEMA_FINGERPRINTS"
    )


@pytest.mark.parametrize(
    "torch_list, cmake",
    [
        ("8.0;8.6+PTX", "80-real;86"),
        ("7.5 8.0", "75-real;80-real"),
        ("Ampere", "80-real;86"),
        ("Turing;8.9", "75;89-real"),
        ("9.0a;10.0+PTX", "90a-real;100"),
        ("8.6;8.6+PTX", "86"),
        (" 8.0 ; 8.0 ", "80-real"),
    ],
)
def test_torch_cuda_arch_list_in_cmake_notation(torch_list, cmake):
    assert _extension.cmake_cuda_architectures(torch_list) == cmake


@pytest.mark.parametrize("bad", ["sm_80", "8", "Ampere2", ";", "8.6+ptx"])
def test_bad_torch_cuda_arch_list_is_refused(bad):
    with pytest.raises(ValueError, match="TORCH_CUDA_ARCH_LIST"):
        _extension.cmake_cuda_architectures(bad)


def test_build_info_for_cmake_runs_without_pynas():
    """CMakeLists.txt runs pynas/_extension.py as a script: it must not need pynas itself
    (`-S`: no site processing, so no editable install of pynas; torch from PYTHONPATH)."""
    proc = subprocess.run(
        [sys.executable, "-S", str(REPO / "pynas" / "_extension.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]},
    )
    assert proc.returncode == 0, proc.stderr
    info = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert info["torch_version"] == torch.__version__
    assert info["ops_version"] == str(_extension.OPS_VERSION)
    assert Path(info["library_dir"], "libc10.so").exists() or sys.platform != "linux"
