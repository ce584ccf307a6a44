// C API: subscriptions (pull and push, with C callbacks), deliveries, and
// checkpoints.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/capi_internal.hpp"
#include "evstore/store.hpp"
#include "evstore/subscription.hpp"

using evstore::CheckpointInfo;
using evstore::Delivery;
using evstore::PushSubscription;
using evstore::RecordedEvent;
using evstore::Status;
using evstore::SubscribeOptions;
using evstore::Subscription;
using evstore::SubscriptionFilter;
using evstore::capi::Bytes;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::Ms;
using evstore::capi::NoBytes;
using evstore::capi::StoreOf;
using evstore::capi::View;

struct evs_subscribe_options_t {
  SubscribeOptions options;
};

// A delivery the caller reads: the pull subscription's current one, or the
// one a push callback is running for.
struct evs_delivery_t {
  const Delivery* d;
};

struct evs_subscription_t {
  explicit evs_subscription_t(Subscription s) : sub(std::move(s)) {}
  Subscription sub;
  Delivery current;
  evs_delivery_t view{&current};
};

namespace {

// What a push subscription's handler shares with its C handle. The handler
// holds its own reference: it outlives a handle destroyed by the callback.
struct PushShared {
  // Opened once evs_subscribe_push has stored the C++ subscription in the
  // handle, so that a callback that stops or waits on its handle never
  // finds it half-made.
  std::latch ready{1};
  // The code the callback ended the subscription with (EVS_OK: it did not).
  // A Status cannot carry every C code (EVS_NO_MEMORY has no Status code),
  // so wait() reports this one.
  std::atomic<int> callback_code{EVS_OK};
};

}  // namespace

struct evs_push_subscription_t {
  std::shared_ptr<PushShared> shared;
  std::unique_ptr<PushSubscription> push;
};

struct evs_checkpoint_list_t {
  std::vector<CheckpointInfo> entries;
};

namespace {

// The C constant of each delivery kind. No default: -Wswitch names a kind
// added to the C++ enum and missing here.
constexpr int CKind(Delivery::Kind k) {
  switch (k) {
    case Delivery::Kind::kEvents: return EVS_DELIVERY_EVENTS;
    case Delivery::Kind::kCaughtUp: return EVS_DELIVERY_CAUGHT_UP;
    case Delivery::Kind::kFellBehind: return EVS_DELIVERY_FELL_BEHIND;
    case Delivery::Kind::kTimedOut: return EVS_DELIVERY_TIMED_OUT;
  }
  return -1;
}
static_assert(CKind(Delivery::Kind::kEvents) == static_cast<int>(Delivery::Kind::kEvents) &&
                  CKind(Delivery::Kind::kTimedOut) == static_cast<int>(Delivery::Kind::kTimedOut),
              "EVS_DELIVERY_* follow the order of Delivery::Kind");

const RecordedEvent* EventAt(const evs_delivery_t* delivery, size_t i) {
  if (!delivery || i >= delivery->d->events.size()) return nullptr;
  return &delivery->d->events[i];
}

// The code a push callback returned, as the Status that ends the C++
// subscription (the C code itself goes to PushShared::callback_code).
Status CallbackStatus(int rc) {
  std::string msg = std::string("subscription callback returned ") + evs_errstr(rc) + " (" +
                    std::to_string(rc) + ")";
  return evstore::capi::ToStatus(rc, msg);
}

// The code wait() returns for a callback's code: those this API defines as
// they are, others EVS_ABORTED.
int KnownCode(int rc) {
  if ((rc > EVS_OK && rc <= EVS_CLOSED) || rc == EVS_NO_MEMORY) return rc;
  return EVS_ABORTED;
}

// Runs set(options) after checking options and the buffer p[0..len-1].
template <typename F>
int SetOption(evs_subscribe_options_t* options, const void* p, size_t len, const char* what,
              char** errmsg, F&& set) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    int rc;
    if (!evstore::capi::CheckBuffer(p, len, what, errmsg, &rc)) return rc;
    set(options->options);
    return EVS_OK;
  });
}

const SubscribeOptions& OptionsOf(const evs_subscribe_options_t* options) {
  static const SubscribeOptions kDefaults;
  return options ? options->options : kDefaults;
}

}  // namespace

extern "C" {

// ---- Options ----

evs_subscribe_options_t* evs_subscribe_options_create(void) {
  return new (std::nothrow) evs_subscribe_options_t();
}

void evs_subscribe_options_destroy(evs_subscribe_options_t* options) { delete options; }

int evs_subscribe_options_set_filter_all(evs_subscribe_options_t* options, char** errmsg) {
  return SetOption(options, nullptr, 0, "", errmsg,
                   [&](SubscribeOptions& o) { o.filter = SubscriptionFilter::All(); });
}

int evs_subscribe_options_set_filter_stream(evs_subscribe_options_t* options, const char* stream,
                                            size_t stream_len, char** errmsg) {
  return SetOption(options, stream, stream_len, "stream", errmsg, [&](SubscribeOptions& o) {
    o.filter = SubscriptionFilter::Stream(std::string(View(stream, stream_len)));
  });
}

int evs_subscribe_options_set_filter_category(evs_subscribe_options_t* options,
                                              const char* category, size_t category_len,
                                              char** errmsg) {
  return SetOption(options, category, category_len, "category", errmsg, [&](SubscribeOptions& o) {
    o.filter = SubscriptionFilter::Category(std::string(View(category, category_len)));
  });
}

int evs_subscribe_options_set_filter_types(evs_subscribe_options_t* options,
                                           const char* const* types, const size_t* type_lens,
                                           size_t count, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    return evstore::capi::TypesFilter(types, type_lens, count, errmsg, &options->options.filter);
  });
}

int evs_subscribe_options_set_from(evs_subscribe_options_t* options, uint64_t position,
                                   char** errmsg) {
  return SetOption(options, nullptr, 0, "", errmsg, [&](SubscribeOptions& o) { o.from = position; });
}

int evs_subscribe_options_set_checkpoint(evs_subscribe_options_t* options, const char* name,
                                         size_t name_len, char** errmsg) {
  return SetOption(options, name, name_len, "name", errmsg,
                   [&](SubscribeOptions& o) { o.checkpoint = std::string(View(name, name_len)); });
}

int evs_subscribe_options_set_max_batch(evs_subscribe_options_t* options, size_t max_batch,
                                        char** errmsg) {
  return SetOption(options, nullptr, 0, "", errmsg,
                   [&](SubscribeOptions& o) { o.max_batch = max_batch; });
}

int evs_subscribe_options_set_behind_after(evs_subscribe_options_t* options, uint64_t positions,
                                           char** errmsg) {
  return SetOption(options, nullptr, 0, "", errmsg,
                   [&](SubscribeOptions& o) { o.behind_after = positions; });
}

int evs_subscribe_options_set_min_wake_interval(evs_subscribe_options_t* options,
                                                uint64_t microseconds, char** errmsg) {
  // Clamped here only to keep the conversion defined; evs_subscribe rejects
  // anything over 1 s.
  const uint64_t us = std::min<uint64_t>(microseconds, uint64_t{1} << 40);
  return SetOption(options, nullptr, 0, "", errmsg, [&](SubscribeOptions& o) {
    o.min_wake_interval = std::chrono::microseconds(static_cast<int64_t>(us));
  });
}

// ---- Pull ----

int evs_subscribe(evs_store_t* store, const evs_subscribe_options_t* options,
                  evs_subscription_t** sub, char** errmsg) {
  return Guard(errmsg, [&] {
    if (sub) *sub = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(sub, "sub");
    auto r = StoreOf(store).subscribe(OptionsOf(options));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *sub = new evs_subscription_t(std::move(r).value());
    return EVS_OK;
  });
}

int evs_subscription_next(evs_subscription_t* sub, uint64_t timeout_ms,
                          const evs_delivery_t** delivery, char** errmsg) {
  return Guard(errmsg, [&] {
    if (delivery) *delivery = nullptr;
    EVS_CHECK_ARG(sub, "sub");
    EVS_CHECK_ARG(delivery, "delivery");
    // The previous delivery ends here, whatever happens next.
    sub->current = Delivery();
    auto r = sub->sub.next(Ms(timeout_ms));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    sub->current = std::move(r).value();
    *delivery = &sub->view;
    return EVS_OK;
  });
}

int evs_subscription_checkpoint(evs_subscription_t* sub, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(sub, "sub");
    return FromStatus(sub->sub.checkpoint(), errmsg);
  });
}

int evs_subscription_checkpoint_at(evs_subscription_t* sub, uint64_t position, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(sub, "sub");
    return FromStatus(sub->sub.checkpoint(position), errmsg);
  });
}

int evs_subscription_stop(evs_subscription_t* sub, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(sub, "sub");
    sub->sub.stop();
    return EVS_OK;
  });
}

uint64_t evs_subscription_position(const evs_subscription_t* sub) {
  return sub ? sub->sub.position() : 0;
}

void evs_subscription_destroy(evs_subscription_t* sub) { delete sub; }

// ---- Deliveries ----

int evs_delivery_kind(const evs_delivery_t* delivery) {
  return delivery ? CKind(delivery->d->kind) : 0;
}

uint64_t evs_delivery_position(const evs_delivery_t* delivery) {
  return delivery ? delivery->d->position : 0;
}

size_t evs_delivery_event_count(const evs_delivery_t* delivery) {
  return delivery ? delivery->d->events.size() : 0;
}

const uint8_t* evs_delivery_event_id(const evs_delivery_t* delivery, size_t i) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? e->id.bytes : nullptr;
}

const char* evs_delivery_event_correlation_id(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->correlation_id, len) : NoBytes(len);
}

const char* evs_delivery_event_causation_id(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->causation_id, len) : NoBytes(len);
}

uint32_t evs_delivery_event_schema_version(const evs_delivery_t* delivery, size_t i) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? e->schema_version : 0;
}

const char* evs_delivery_event_stream(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->stream, len) : NoBytes(len);
}

const char* evs_delivery_event_type(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->type, len) : NoBytes(len);
}

const char* evs_delivery_event_content_type(const evs_delivery_t* delivery, size_t i,
                                            size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->content_type, len) : NoBytes(len);
}

const void* evs_delivery_event_data(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->data, len) : NoBytes(len);
}

const void* evs_delivery_event_metadata(const evs_delivery_t* delivery, size_t i, size_t* len) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? Bytes(e->metadata, len) : NoBytes(len);
}

uint64_t evs_delivery_event_version(const evs_delivery_t* delivery, size_t i) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? e->version : 0;
}

uint64_t evs_delivery_event_position(const evs_delivery_t* delivery, size_t i) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? e->position : 0;
}

int64_t evs_delivery_event_timestamp_ms(const evs_delivery_t* delivery, size_t i) {
  const RecordedEvent* e = EventAt(delivery, i);
  return e ? e->timestamp_ms : 0;
}

// ---- Push ----

int evs_subscribe_push(evs_store_t* store, const evs_subscribe_options_t* options,
                       evs_delivery_fn fn, void* user_data, evs_push_subscription_t** sub,
                       char** errmsg) {
  return Guard(errmsg, [&] {
    if (sub) *sub = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(fn, "fn");
    EVS_CHECK_ARG(sub, "sub");
    auto handle = std::make_unique<evs_push_subscription_t>();
    handle->shared = std::make_shared<PushShared>();
    evs_push_subscription_t* self = handle.get();
    auto handler = [shared = handle->shared, self, fn, user_data](const Delivery& d) -> Status {
      shared->ready.wait();
      evs_delivery_t view{&d};
      // `self` may be destroyed by the callback: nothing below touches it.
      const int rc = fn(user_data, &view, self);
      if (rc == EVS_OK) return Status::OK();
      shared->callback_code.store(KnownCode(rc), std::memory_order_relaxed);
      return CallbackStatus(rc);
    };
    auto r = StoreOf(store).subscribe(OptionsOf(options), std::move(handler));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    // Nothing below can fail: the handler waits for `ready` and must see it.
    handle->push = std::move(r).value();
    handle->shared->ready.count_down();
    *sub = handle.release();
    return EVS_OK;
  });
}

int evs_push_subscription_stop(evs_push_subscription_t* sub, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(sub, "sub");
    sub->push->stop();
    return EVS_OK;
  });
}

int evs_push_subscription_wait(evs_push_subscription_t* sub, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(sub, "sub");
    Status s = sub->push->wait();
    if (s.IsBusy()) return FromStatus(s, errmsg);  // called from the callback
    const int code = sub->shared->callback_code.load(std::memory_order_relaxed);
    if (!s.ok() && code != EVS_OK) return Fail(errmsg, code, s.message());
    return FromStatus(s, errmsg);
  });
}

int evs_push_subscription_done(const evs_push_subscription_t* sub) {
  return sub && sub->push->done() ? 1 : 0;
}

uint64_t evs_push_subscription_position(const evs_push_subscription_t* sub) {
  return sub ? sub->push->position() : 0;
}

void evs_push_subscription_destroy(evs_push_subscription_t* sub) {
  if (!sub) return;
  // Ended before the handle goes, so that a callback running meanwhile may
  // still use it. On the callback's own thread wait() returns Busy at once:
  // the handle goes now, and the thread holds what the callback runs on.
  sub->push->stop();
  try {
    (void)sub->push->wait();
  } catch (...) {  // copying the result ran out of memory; it has ended all the same
  }
  delete sub;
}

// ---- Checkpoints ----

int evs_checkpoint_get(evs_store_t* store, const char* name, size_t name_len, uint64_t* position,
                       int64_t* updated_ms, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(name, name_len, "name");
    auto r = StoreOf(store).get_checkpoint(View(name, name_len));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (position) *position = r->position;
    if (updated_ms) *updated_ms = r->updated_ms;
    return EVS_OK;
  });
}

int evs_checkpoint_set(evs_store_t* store, const char* name, size_t name_len, uint64_t position,
                       char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(name, name_len, "name");
    return FromStatus(StoreOf(store).set_checkpoint(View(name, name_len), position), errmsg);
  });
}

int evs_checkpoint_delete(evs_store_t* store, const char* name, size_t name_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(name, name_len, "name");
    return FromStatus(StoreOf(store).delete_checkpoint(View(name, name_len)), errmsg);
  });
}

int evs_checkpoint_list(evs_store_t* store, evs_checkpoint_list_t** list, char** errmsg) {
  return Guard(errmsg, [&] {
    if (list) *list = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(list, "list");
    auto r = StoreOf(store).list_checkpoints();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    auto out = std::make_unique<evs_checkpoint_list_t>();
    out->entries = std::move(r).value();
    *list = out.release();
    return EVS_OK;
  });
}

size_t evs_checkpoint_list_size(const evs_checkpoint_list_t* list) {
  return list ? list->entries.size() : 0;
}

int evs_checkpoint_list_get(const evs_checkpoint_list_t* list, size_t i, const char** name,
                            size_t* name_len, uint64_t* position, int64_t* updated_ms,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(list, "list");
    if (i >= list->entries.size())
      return Fail(errmsg, EVS_INVALID_ARGUMENT, "checkpoint index out of range");
    const CheckpointInfo& c = list->entries[i];
    if (name) *name = Bytes(c.name, name_len);
    else if (name_len) *name_len = c.name.size();
    if (position) *position = c.position;
    if (updated_ms) *updated_ms = c.updated_ms;
    return EVS_OK;
  });
}

void evs_checkpoint_list_destroy(evs_checkpoint_list_t* list) { delete list; }

}  // extern "C"
