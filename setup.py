"""Builds the extension ``pygen._C``: C++ CPU kernels always, CUDA kernels when possible.

Environment:
  PYGEN_CUDA=0/1         force the CUDA kernels off/on (default: on when torch is a CUDA build
                         and nvcc is found)
  TORCH_CUDA_ARCH_LIST   CUDA archs to compile for (default "8.0;9.0")
  MAX_JOBS               parallel compile jobs (read by torch's ninja build)
"""
import glob
import os
import shutil
import site
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent


def cuda_wanted(torch):
    from torch.utils import cpp_extension

    flag = os.environ.get("PYGEN_CUDA")
    available = torch.version.cuda is not None and (
        shutil.which("nvcc") is not None or cpp_extension.CUDA_HOME is not None)
    if flag is not None:
        if flag == "1" and not available:
            sys.exit("PYGEN_CUDA=1 but torch is not a CUDA build or nvcc is not found")
        return flag == "1"
    return available


def cuda_toolkit_root():
    """The CUDA toolkit nvcc belongs to (torch may guess /usr/local when nvcc is a wrapper script there)."""
    from torch.utils import cpp_extension

    cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), cpp_extension.CUDA_HOME, "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        cands.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for root in cands:
        if root and os.path.isfile(os.path.join(root, "include", "crt", "host_defines.h")):
            return root
    return None


def cuda_header_dirs():
    """The toolkit's headers (for the C++ files that include ATen's CUDA headers), then the headers
    (cublas_v2.h, cusparse.h) that ATen's CUDA headers need, shipped by the pip CUDA wheels."""
    root = cuda_toolkit_root()
    dirs = [os.path.join(root, "include")] if root else []
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        for sub in ("nvidia/cu13/include", "nvidia/cu12/include"):
            if os.path.isdir(os.path.join(sp, sub)):
                dirs.append(os.path.join(sp, sub))
        dirs += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "include")))
    return dirs


def extensions():
    import torch
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    sources = ["csrc/ops.cpp", "csrc/python_module.cpp"] + sorted(glob.glob("csrc/kernels/*.cpp"))
    cxx = ["-O3", "-DNDEBUG"]
    link = []
    if sys.platform.startswith("linux"):
        # at::parallel_for runs serially in code compiled without OpenMP; libgomp's soname makes
        # the extension share the copy torch has already loaded (and torch.set_num_threads).
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    with_cuda = cuda_wanted(torch)
    if not with_cuda:
        return [CppExtension("pygen._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=link)], False
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    archs = os.environ["TORCH_CUDA_ARCH_LIST"]
    defines = ["-DPYGEN_WITH_CUDA", f'-DPYGEN_CUDA_ARCHS="{archs}"']
    sources += sorted(glob.glob("csrc/kernels/*.cu"))
    nvcc = ["-O3", "--use_fast_math", "-lineinfo", "--expt-relaxed-constexpr"] + defines
    root = cuda_toolkit_root()
    lib_dirs = [d for d in ([os.path.join(root, "lib64"), os.path.join(root, "lib")] if root else []) if os.path.isdir(d)]
    ext = CUDAExtension("pygen._C", sources, include_dirs=cuda_header_dirs(), library_dirs=lib_dirs,
                        extra_compile_args={"cxx": cxx + defines, "nvcc": nvcc}, extra_link_args=link)
    return [ext], True


def main():
    from torch.utils.cpp_extension import BuildExtension

    exts, _ = extensions()
    setup(ext_modules=exts, cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})


if __name__ == "__main__":
    main()
