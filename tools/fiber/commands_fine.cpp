// The `fiber` commands of one translation unit: the fine-grained model (grounding with its five
// variants, fine-grained training); one unit so that they share their instantiations.
#include "command.hpp"
#include "cmd_ground.hpp"
#include "cmd_train_fine.hpp"
