// pygen's C++ API in one include: load a seq2seq checkpoint and generate.
#pragma once
#include "pygen/error.h"
#include "pygen/generation_options.h"
#include "pygen/model.h"
#include "pygen/safetensors.h"
