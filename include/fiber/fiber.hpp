#pragma once
// The umbrella header: everything fiber offers. Host programs may also include single layers.
#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/shape.hpp"
#include "fiber/core/storage.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/expr/evaluate.hpp"
#include "fiber/expr/expression.hpp"
#include "fiber/ops/reduce.hpp"
