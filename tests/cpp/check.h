// Minimal assertion helpers for the C++ tests (no test framework dependency).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

#define PYGEN_CHECK(cond, msg)                                                     \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, std::string(msg).c_str());                               \
      std::exit(1);                                                                \
    }                                                                              \
  } while (0)
