// evstore-demo part: an order checkout saga (reserve stock, charge payment,
// arrange shipping) over many orders, some failing and being compensated.
#ifndef EVSTORE_TOOLS_DEMO_CHECKOUT_SAGA_HPP_
#define EVSTORE_TOOLS_DEMO_CHECKOUT_SAGA_HPP_

#include "evstore/store.hpp"

namespace evdemo {

// Runs the checkout saga over a batch of orders on `store` (open for
// writing) and prints the outcome. Returns 0 on success, 1 (after printing
// the error) otherwise. The saga engine it opens is shut down before return.
int RunCheckoutSaga(evstore::Store& store);

}  // namespace evdemo

#endif  // EVSTORE_TOOLS_DEMO_CHECKOUT_SAGA_HPP_
