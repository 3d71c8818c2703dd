# A CUDA build of torch from pip makes find_package(Torch) look for a full CUDA toolkit
# (cudart, nvrtc, an arch to compile for) even when pygen builds CPU kernels only. pip's
# torch ships those libraries in site-packages/nvidia/cu*/; point CMake at them (and at an
# nvcc toolkit if one is installed) so that plain `cmake -S . -B build` works.
foreach(prefix ${CMAKE_PREFIX_PATH})
  # prefix is site-packages/torch/share/cmake
  get_filename_component(_site "${prefix}/../../.." ABSOLUTE)
  file(GLOB _nvidia_libs "${_site}/nvidia/cu*/lib")
  file(GLOB _nvidia_includes "${_site}/nvidia/cu*/include")
  if(_nvidia_libs)
    list(GET _nvidia_libs 0 _nvidia_lib)
    list(GET _nvidia_includes 0 _nvidia_include)
    file(GLOB _nvrtc "${_nvidia_lib}/libnvrtc.so*")
    file(GLOB _cudart "${_nvidia_lib}/libcudart.so*")
    if(_nvrtc AND NOT CUDA_nvrtc_LIBRARY)
      list(GET _nvrtc 0 _nvrtc)
      set(CUDA_nvrtc_LIBRARY "${_nvrtc}" CACHE FILEPATH "nvrtc from torch's CUDA wheels" FORCE)
    endif()
    if(_cudart AND NOT CUDA_CUDART_LIBRARY)
      list(GET _cudart 0 _cudart)
      set(CUDA_CUDART_LIBRARY "${_cudart}" CACHE FILEPATH "cudart from torch's CUDA wheels" FORCE)
    endif()
    list(APPEND PYGEN_EXTRA_CUDA_INCLUDES "${_nvidia_include}")
  endif()
endforeach()

find_program(_nvcc nvcc)
if(_nvcc AND NOT CUDA_TOOLKIT_ROOT_DIR)
  get_filename_component(_nvcc_real "${_nvcc}" REALPATH)
  get_filename_component(_toolkit "${_nvcc_real}/../.." ABSOLUTE)
  if(EXISTS "${_toolkit}/include/cuda_runtime.h")
    set(CUDA_TOOLKIT_ROOT_DIR "${_toolkit}" CACHE PATH "CUDA toolkit found from nvcc")
  endif()
endif()
# Re-running CMake in a configured build directory (an edited CMakeLists.txt, a new source file
# matched by a CONFIGURE_DEPENDS glob): FindCUDA compares CUDA_TOOLKIT_TARGET_DIR, a plain
# variable it sets only on the first run, with the value it cached, and on the mismatch unsets the
# cudart library and include directory found above, failing the configure. Give it the cached value.
if(DEFINED CUDA_TOOLKIT_TARGET_DIR_INTERNAL AND NOT DEFINED CUDA_TOOLKIT_TARGET_DIR)
  set(CUDA_TOOLKIT_TARGET_DIR "${CUDA_TOOLKIT_TARGET_DIR_INTERNAL}")
endif()
# FindCUDA derives CUDA_INCLUDE_DIRS from CUDA_TOOLKIT_INCLUDE (FORCE: replaces a NOTFOUND left in
# the cache by an earlier failed configure).
if(NOT CUDA_TOOLKIT_INCLUDE)
  if(CUDA_TOOLKIT_ROOT_DIR AND EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/include/cuda_runtime.h")
    set(CUDA_TOOLKIT_INCLUDE "${CUDA_TOOLKIT_ROOT_DIR}/include" CACHE PATH "CUDA headers" FORCE)
  elseif(_nvidia_include)
    set(CUDA_TOOLKIT_INCLUDE "${_nvidia_include}" CACHE PATH "CUDA headers from torch's CUDA wheels" FORCE)
  endif()
endif()

# Without a GPU, torch's arch detection would fail: compile for Ampere and Hopper by default.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
endif()
