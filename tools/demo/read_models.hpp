// evstore-demo part: read models. An "order totals" and a "stock per SKU"
// projection fold the orders into state kept in the store (exactly once),
// are queried by key and prefix and at a point-in-time snapshot, and a
// subscriber with a checkpoint stops and resumes where it left off.
#ifndef EVSTORE_TOOLS_DEMO_READ_MODELS_HPP_
#define EVSTORE_TOOLS_DEMO_READ_MODELS_HPP_

#include "evstore/store.hpp"

namespace evdemo {

// Runs the read-model part on `store` (open for writing, holding the demo's
// orders). Returns 0 on success, 1 (after printing the error) otherwise.
int RunReadModels(evstore::Store& store);

}  // namespace evdemo

#endif  // EVSTORE_TOOLS_DEMO_READ_MODELS_HPP_
