// evstore-demo part: the order service's command side. An order aggregate
// (state folded from the order's events, cached and snapshotted) and a
// command bus deciding PlaceOrder, AddItem and ConfirmOrder on it: a
// conflicting command is retried on the newer state, a repeated command id is
// answered from the command log, a refused command returns a domain error.
#ifndef EVSTORE_TOOLS_DEMO_ORDER_COMMANDS_HPP_
#define EVSTORE_TOOLS_DEMO_ORDER_COMMANDS_HPP_

#include "evstore/store.hpp"

namespace evdemo {

// Runs the command part on `store` (open for writing). Returns 0 on success,
// 1 (after printing the error) otherwise.
int RunOrderCommands(evstore::Store& store);

}  // namespace evdemo

#endif  // EVSTORE_TOOLS_DEMO_ORDER_COMMANDS_HPP_
