"""Fixtures shared by several test files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cmake_build(tmp_path_factory):
    """One CMake build of the C++ library, the example hosts and the C++ tests, installed into a
    prefix: test_foundation runs its ctest, test_cpp_engine drives examples/generate and builds an
    outside project against the prefix. Building once (about 3 minutes on 2 busy cores) instead of
    once per file halves the C++ share of the suite. PYGEN_CPP_BUILD_DIR reuses a build directory."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    import torch

    build = Path(os.environ.get("PYGEN_CPP_BUILD_DIR") or tmp_path_factory.mktemp("cmake") / "build")
    prefix = build.parent / "install"
    jobs = str(min(os.cpu_count() or 2, 2))
    commands = [["cmake", "--build", str(build), "-j", jobs], ["cmake", "--install", str(build), "--prefix", str(prefix)]]
    if not (build / "CMakeCache.txt").is_file():  # a reused build directory keeps its configuration
        commands.insert(0, ["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                            f"-DPYGEN_PYTHON={sys.executable}"])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    return SimpleNamespace(build=build, prefix=prefix, generate=build / "examples" / "generate")
