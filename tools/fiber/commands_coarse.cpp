// The `fiber` commands of one translation unit: the coarse model (inference, initialisation of
// coarse and fine weights, coarse training); one unit so that they share their instantiations.
#include "command.hpp"
#include "cmd_embed.hpp"
#include "cmd_init.hpp"
#include "cmd_match.hpp"
#include "cmd_retrieve.hpp"
#include "cmd_train.hpp"
