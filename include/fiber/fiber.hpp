#pragma once
// The umbrella header: everything fiber offers. Host programs may also include single layers.
#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/core/half.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "fiber/io/tensor_record.hpp"
#include "fiber/io/torch_checkpoint.hpp"
