#pragma once
// The umbrella header: everything fiber offers. Host programs may also include single layers.
#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/text/tokenizer.hpp"
