// The `fiber` commands of one translation unit: the light commands (files, data, tokenizer).
#include "command.hpp"
#include "cmd_convert.hpp"
#include "cmd_data.hpp"
#include "cmd_inspect.hpp"
#include "cmd_resize.hpp"
#include "cmd_tokenize.hpp"
