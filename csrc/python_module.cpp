// The Python extension module pygen._C: importing it registers the operators (csrc/ops.cpp)
// and exposes how the library was built.
#include <Python.h>
#include <pybind11/pybind11.h>

#ifndef PYGEN_CUDA_ARCHS
#define PYGEN_CUDA_ARCHS ""
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "pygen compiled kernels";
#ifdef PYGEN_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.attr("cuda_archs") = PYGEN_CUDA_ARCHS;
#ifdef _OPENMP
  m.attr("openmp") = true;  // at::parallel_for in the CPU kernels uses torch's intra-op threads
#else
  m.attr("openmp") = false;
#endif
}
