// C API: saga definitions with C handlers, the engine, and saga queries.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/capi_internal.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "format/saga_record.hpp"

using evstore::Result;
using evstore::RetryPolicy;
using evstore::SagaDefinition;
using evstore::SagaEngine;
using evstore::SagaDamage;
using evstore::SagaEngineOptions;
using evstore::SagaEvent;
using evstore::SagaInfo;
using evstore::SagaState;
using evstore::Status;
using evstore::StepContext;
using evstore::StepDefinition;
using evstore::StepResult;
using evstore::StreamAppend;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::Bytes;
using evstore::capi::Ms;
using evstore::capi::NoBytes;
using evstore::capi::View;

struct evs_saga_def_t {
  SagaDefinition def;
};

struct evs_saga_step_t {
  const StepContext* ctx;
};

struct evs_saga_result_t {
  StepResult result;
  bool set = false;  // by evs_saga_result_success, _retry or _fail
};

struct evs_saga_options_t {
  SagaEngineOptions options;
};

struct evs_saga_engine_t {
  std::unique_ptr<SagaEngine> engine;
};

// Either owns a SagaInfo (queries) or points at one (callbacks).
struct evs_saga_info_t {
  explicit evs_saga_info_t(const SagaInfo* borrowed) : info(borrowed) {}
  explicit evs_saga_info_t(SagaInfo&& i) : owned(std::move(i)), info(&owned) {}
  evs_saga_info_t(const evs_saga_info_t&) = delete;
  evs_saga_info_t& operator=(const evs_saga_info_t&) = delete;
  SagaInfo owned;
  const SagaInfo* info;
};

// One page of evs_saga_list.
struct evs_saga_list_t {
  std::vector<std::unique_ptr<evs_saga_info_t>> sagas;
  std::string next_after;
  std::vector<std::string> damaged;
};

struct evs_saga_damaged_t {
  struct Entry {
    std::string id;
    int code;
    std::string message;  // as an errmsg reads: "Corruption: ..."
  };
  std::vector<Entry> entries;
};

namespace {

constexpr std::string_view kNoResult =
    "handler returned without setting a result (call evs_saga_result_success, _retry or _fail)";

evstore::StepHandler Wrap(evs_saga_handler_fn fn, void* user_data) {
  if (!fn) return {};
  return [fn, user_data](const StepContext& ctx) {
    evs_saga_step_t step{&ctx};
    evs_saga_result_t result;
    fn(user_data, &step, &result);
    // Counting silence as success would let a handler that returned early
    // (or whose evs_saga_result_success failed) complete its step without
    // having done it. A retry is safe, as handlers are idempotent; and what
    // the attempt did is unknown, as after a timeout, so it is partial: if
    // the saga compensates, this step is compensated too.
    if (!result.set) return StepResult::Retry(std::string(kNoResult), /*partial=*/true);
    return std::move(result.result);
  };
}

std::function<void(const SagaInfo&)> WrapCallback(evs_saga_callback_fn fn, void* user_data) {
  if (!fn) return {};
  return [fn, user_data](const SagaInfo& info) {
    evs_saga_info_t view(&info);
    fn(user_data, &view);
  };
}

// on_damaged runs inside SagaEngine::open, which must not see an exception:
// without memory for the message the callback gets an empty one.
std::function<void(const SagaDamage&)> WrapDamaged(evs_saga_damaged_fn fn, void* user_data) {
  if (!fn) return {};
  return [fn, user_data](const SagaDamage& d) noexcept {
    std::string message;
    try {
      message = d.error.ToString();
    } catch (...) {
    }
    fn(user_data, d.id.data(), d.id.size(), static_cast<int>(d.error.code()), message.c_str());
  };
}

// A uint64_t count where SIZE_MAX (EVS_NO_LIMIT) means none.
size_t Count(uint64_t n) { return n > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(n); }


bool ValidState(int s) { return s >= 0 && s < evstore::format::kSagaStateCount; }

// REQUIRES: result is not NULL.
int SetResult(evs_saga_result_t* result, StepResult r) {
  r.events = std::move(result->result.events);
  result->result = std::move(r);
  result->set = true;
  return EVS_OK;
}

int EmitInfo(Result<SagaInfo> r, evs_saga_info_t** saga, char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  if (saga) *saga = new evs_saga_info_t(std::move(r).value());
  return EVS_OK;
}

// The C constant of each C++ enum value. No default: -Wswitch (part of
// -Wall, an error under -Dwerror=true) names a value added to the C++ enum
// and missing here. -1 for values that are not enumerators.
constexpr int CState(SagaState s) {
  switch (s) {
    case SagaState::kPending: return EVS_SAGA_PENDING;
    case SagaState::kRunning: return EVS_SAGA_RUNNING;
    case SagaState::kCompensating: return EVS_SAGA_COMPENSATING;
    case SagaState::kCompleted: return EVS_SAGA_COMPLETED;
    case SagaState::kCompensated: return EVS_SAGA_COMPENSATED;
    case SagaState::kStuck: return EVS_SAGA_STUCK;
  }
  return -1;
}

constexpr int CEvent(SagaEvent e) {
  switch (e) {
    case SagaEvent::kStarted: return EVS_SAGA_EVENT_STARTED;
    case SagaEvent::kStepCompleted: return EVS_SAGA_EVENT_STEP_COMPLETED;
    case SagaEvent::kStepFailed: return EVS_SAGA_EVENT_STEP_FAILED;
    case SagaEvent::kStepTimedOut: return EVS_SAGA_EVENT_STEP_TIMED_OUT;
    case SagaEvent::kCompensationStarted: return EVS_SAGA_EVENT_COMPENSATION_STARTED;
    case SagaEvent::kStepCompensated: return EVS_SAGA_EVENT_STEP_COMPENSATED;
    case SagaEvent::kCompensationFailed: return EVS_SAGA_EVENT_COMPENSATION_FAILED;
    case SagaEvent::kCompensationTimedOut: return EVS_SAGA_EVENT_COMPENSATION_TIMED_OUT;
    case SagaEvent::kCompleted: return EVS_SAGA_EVENT_COMPLETED;
    case SagaEvent::kCompensated: return EVS_SAGA_EVENT_COMPENSATED;
    case SagaEvent::kStuck: return EVS_SAGA_EVENT_STUCK;
    case SagaEvent::kRetried: return EVS_SAGA_EVENT_RETRIED;
    case SagaEvent::kResolved: return EVS_SAGA_EVENT_RESOLVED;
    case SagaEvent::kStepInterrupted: return EVS_SAGA_EVENT_STEP_INTERRUPTED;
    case SagaEvent::kCompensationInterrupted: return EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED;
  }
  return -1;
}

// Exactly the values the record decoder accepts (0..count-1) have a C
// constant, equal to the C++ value: what the engine can write, C can name,
// and the accessors that pass enum values through as int need no mapping.
template <typename E>
constexpr bool SameNumbering(int (*to_c)(E), int count) {
  for (int v = 0; v < 256; v++) {
    const int c = to_c(static_cast<E>(v));
    if (v < count ? c != v : c != -1) return false;
  }
  return true;
}
static_assert(SameNumbering<SagaState>(CState, evstore::format::kSagaStateCount),
              "every SagaState needs its EVS_SAGA_* constant, with the same value");
static_assert(SameNumbering<SagaEvent>(CEvent, evstore::format::kSagaEventCount),
              "every SagaEvent needs its EVS_SAGA_EVENT_* constant, with the same value");

}  // namespace

extern "C" {

const char* evs_saga_state_name(int state) {
  if (!ValidState(state)) return "unknown";
  return evstore::SagaStateName(static_cast<SagaState>(state));
}

const char* evs_saga_event_name(int event) {
  if (event < 0 || event >= evstore::format::kSagaEventCount) return "unknown";
  return evstore::SagaEventName(static_cast<SagaEvent>(event));
}

// ---- Definitions ----

int evs_saga_def_create(const char* name, size_t name_len, uint32_t version, evs_saga_def_t** def,
                        char** errmsg) {
  return Guard(errmsg, [&] {
    if (def) *def = nullptr;
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_ARG(def, "def");
    auto d = std::make_unique<evs_saga_def_t>();
    d->def.name = View(name, name_len);
    d->def.version = version;
    *def = d.release();
    return EVS_OK;
  });
}

void evs_saga_def_destroy(evs_saga_def_t* def) { delete def; }

int evs_saga_def_add_step(evs_saga_def_t* def, const char* name, size_t name_len,
                          evs_saga_handler_fn action, evs_saga_handler_fn compensation,
                          void* user_data, uint64_t timeout_ms, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_ARG(action, "action");
    StepDefinition s;
    s.name = View(name, name_len);
    s.action = Wrap(action, user_data);
    s.compensation = Wrap(compensation, user_data);
    if (timeout_ms) s.timeout = Ms(timeout_ms);
    def->def.steps.push_back(std::move(s));
    return EVS_OK;
  });
}

int evs_saga_def_set_retry(evs_saga_def_t* def, size_t step_index, uint8_t compensation,
                           uint32_t max_attempts, uint64_t initial_backoff_ms, double multiplier,
                           uint64_t max_backoff_ms, double jitter, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    if (step_index >= def->def.steps.size())
      return Fail(errmsg, EVS_INVALID_ARGUMENT, "step_index is past the last step");
    RetryPolicy p;
    p.max_attempts = max_attempts;
    p.initial_backoff = Ms(initial_backoff_ms);
    p.multiplier = multiplier;
    p.max_backoff = Ms(max_backoff_ms);
    p.jitter = jitter;
    StepDefinition& s = def->def.steps[step_index];
    (compensation ? s.compensation_retry : s.retry) = p;
    return EVS_OK;
  });
}

// ---- Step context ----

const char* evs_saga_step_saga_id(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->saga_id, len) : NoBytes(len);
}
const char* evs_saga_step_definition(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->definition, len) : NoBytes(len);
}
const char* evs_saga_step_name(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->step, len) : NoBytes(len);
}
uint32_t evs_saga_step_index(const evs_saga_step_t* step) { return step ? step->ctx->step_index : 0; }
uint32_t evs_saga_step_attempt(const evs_saga_step_t* step) { return step ? step->ctx->attempt : 0; }
int evs_saga_step_compensating(const evs_saga_step_t* step) {
  return step && step->ctx->compensating ? 1 : 0;
}
const char* evs_saga_step_idempotency_key(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->idempotency_key, len) : NoBytes(len);
}
const char* evs_saga_step_input(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->input, len) : NoBytes(len);
}
const char* evs_saga_step_output_of(const evs_saga_step_t* step, const char* name, size_t name_len,
                                    size_t* len) {
  if (!step || (!name && name_len)) return NoBytes(len);
  return Bytes(step->ctx->output_of(View(name, name_len)), len);
}
const char* evs_saga_step_failure(const evs_saga_step_t* step, size_t* len) {
  return step ? Bytes(step->ctx->failure, len) : NoBytes(len);
}
int evs_saga_step_cancelled(const evs_saga_step_t* step) {
  return step && step->ctx->cancelled() ? 1 : 0;
}
int64_t evs_saga_step_remaining_ms(const evs_saga_step_t* step) {
  if (!step) return 0;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      step->ctx->deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? left.count() : 0;
}
int evs_saga_step_event_id(const evs_saga_step_t* step, uint32_t n, uint8_t* out, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(step, "step");
    EVS_CHECK_ARG(out, "out");
    evstore::Uuid id = step->ctx->event_id(n);
    std::memcpy(out, id.bytes, sizeof id.bytes);
    return EVS_OK;
  });
}

// ---- Step results ----

int evs_saga_result_success(evs_saga_result_t* result, const void* output, size_t len,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    EVS_CHECK_BUF(output, len, "output");
    return SetResult(result, StepResult::Success(std::string(View(output, len))));
  });
}

int evs_saga_result_retry(evs_saga_result_t* result, const char* error, size_t len, uint8_t partial,
                          char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    EVS_CHECK_BUF(error, len, "error");
    return SetResult(result, StepResult::Retry(std::string(View(error, len)), partial != 0));
  });
}

int evs_saga_result_fail(evs_saga_result_t* result, const char* error, size_t len, uint8_t partial,
                         char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    EVS_CHECK_BUF(error, len, "error");
    return SetResult(result, StepResult::Fail(std::string(View(error, len)), partial != 0));
  });
}

int evs_saga_result_add_events(evs_saga_result_t* result, const char* stream, size_t stream_len,
                               int64_t expected, const evs_event_t* events, size_t count,
                               char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    EVS_CHECK_BUF(events, count, "events");
    auto exp = evstore::capi::ToExpected(expected);
    if (!exp) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not an expected version");
    StreamAppend part;
    part.stream = View(stream, stream_len);
    part.expected = *exp;
    if (int rc = evstore::capi::CopyEvents(events, count, &part.events, errmsg); rc != EVS_OK)
      return rc;
    result->result.events.push_back(std::move(part));
    return EVS_OK;
  });
}

// ---- Options ----

evs_saga_options_t* evs_saga_options_create(void) { return new (std::nothrow) evs_saga_options_t(); }

void evs_saga_options_destroy(evs_saga_options_t* options) { delete options; }

int evs_saga_options_set_threads(evs_saga_options_t* options, size_t threads, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.threads = threads;
    return EVS_OK;
  });
}

int evs_saga_options_set_max_history(evs_saga_options_t* options, size_t entries, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.max_history = entries;
    return EVS_OK;
  });
}

int evs_saga_options_set_on_stuck(evs_saga_options_t* options, evs_saga_callback_fn fn,
                                  void* user_data, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.on_stuck = WrapCallback(fn, user_data);
    return EVS_OK;
  });
}

int evs_saga_options_set_on_finished(evs_saga_options_t* options, evs_saga_callback_fn fn,
                                     void* user_data, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.on_finished = WrapCallback(fn, user_data);
    return EVS_OK;
  });
}

int evs_saga_options_set_keep_finished_ms(evs_saga_options_t* options, uint64_t ms,
                                          char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.keep_finished_for = Ms(ms);
    return EVS_OK;
  });
}

int evs_saga_options_set_max_finished(evs_saga_options_t* options, uint64_t count, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.max_finished = Count(count);
    return EVS_OK;
  });
}

int evs_saga_options_set_retention_interval_ms(evs_saga_options_t* options, uint64_t ms,
                                               char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.retention_interval = Ms(ms);
    return EVS_OK;
  });
}

int evs_saga_options_set_shutdown_timeout_ms(evs_saga_options_t* options, uint64_t ms,
                                             char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.shutdown_timeout = Ms(ms);
    return EVS_OK;
  });
}

int evs_saga_options_set_max_abandoned_threads(evs_saga_options_t* options, size_t threads,
                                               char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.max_abandoned_threads = threads;
    return EVS_OK;
  });
}

int evs_saga_options_set_on_damaged(evs_saga_options_t* options, evs_saga_damaged_fn fn,
                                    void* user_data, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.on_damaged = WrapDamaged(fn, user_data);
    return EVS_OK;
  });
}

// ---- Engine ----

int evs_saga_engine_open(evs_store_t* store, const evs_saga_def_t* const* defs, size_t count,
                         const evs_saga_options_t* options, evs_saga_engine_t** engine,
                         char** errmsg) {
  return Guard(errmsg, [&] {
    if (engine) *engine = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(defs, count, "defs");
    EVS_CHECK_ARG(engine, "engine");
    std::vector<SagaDefinition> copies;
    copies.reserve(count);
    for (size_t i = 0; i < count; i++) {
      if (!defs[i]) return Fail(errmsg, EVS_INVALID_ARGUMENT, "a definition is NULL");
      copies.push_back(defs[i]->def);
    }
    auto r = SagaEngine::open(evstore::capi::StoreOf(store), copies,
                              options ? options->options : SagaEngineOptions());
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *engine = new evs_saga_engine_t{std::move(r).value()};
    return EVS_OK;
  });
}

int evs_saga_engine_shutdown(evs_saga_engine_t* engine, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    return FromStatus(engine->engine->shutdown(), errmsg);
  });
}

void evs_saga_engine_destroy(evs_saga_engine_t* engine) {
  try {
    delete engine;
  } catch (...) {  // keep C callers safe from a throwing shutdown
  }
}

int evs_saga_engine_status(const evs_saga_engine_t* engine, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    return FromStatus(engine->engine->status(), errmsg);
  });
}

int evs_saga_engine_stats(const evs_saga_engine_t* engine, evs_saga_stats_t* stats, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_ARG(stats, "stats");
    evstore::SagaStats s = engine->engine->stats();
    evs_saga_stats_t c;
    c.started = s.started;
    c.completed = s.completed;
    c.compensated = s.compensated;
    c.stuck = s.stuck;
    c.resumed = s.resumed;
    c.step_retries = s.step_retries;
    c.timeouts = s.timeouts;
    c.late_results_discarded = s.late_results_discarded;
    c.interrupted = s.interrupted;
    c.purged = s.purged;
    c.active = s.active;
    c.in_flight = s.in_flight;
    c.abandoned_threads = s.abandoned_threads;
    c.damaged = s.damaged;
    c.step_count = s.step_count;
    c.step_mean_us = s.step_mean_us;
    c.step_p50_us = s.step_p50_us;
    c.step_p99_us = s.step_p99_us;
    c.step_max_us = s.step_max_us;
    *stats = c;
    return EVS_OK;
  });
}

int evs_saga_engine_purge_finished(evs_saga_engine_t* engine, uint64_t* deleted, char** errmsg) {
  return Guard(errmsg, [&] {
    if (deleted) *deleted = 0;
    EVS_CHECK_ARG(engine, "engine");
    auto r = engine->engine->purge_finished();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (deleted) *deleted = *r;
    return EVS_OK;
  });
}

int evs_saga_engine_damaged(const evs_saga_engine_t* engine, evs_saga_damaged_t** damaged,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    if (damaged) *damaged = nullptr;
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_ARG(damaged, "damaged");
    auto out = std::make_unique<evs_saga_damaged_t>();
    for (const SagaDamage& d : engine->engine->damaged())
      out->entries.push_back({d.id, static_cast<int>(d.error.code()), d.error.ToString()});
    *damaged = out.release();
    return EVS_OK;
  });
}

int evs_saga_start(evs_saga_engine_t* engine, const char* definition, size_t definition_len,
                   const char* id, size_t id_len, const void* input, size_t input_len,
                   int* created, char** errmsg) {
  return Guard(errmsg, [&] {
    if (created) *created = 0;
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(definition, definition_len, "definition");
    EVS_CHECK_BUF(id, id_len, "id");
    EVS_CHECK_BUF(input, input_len, "input");
    auto r = engine->engine->start(View(definition, definition_len), View(id, id_len),
                                   View(input, input_len));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (created) *created = *r ? 1 : 0;
    return EVS_OK;
  });
}

int evs_saga_get(evs_saga_engine_t* engine, const char* id, size_t id_len, evs_saga_info_t** saga,
                 char** errmsg) {
  return Guard(errmsg, [&] {
    if (saga) *saga = nullptr;
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(id, id_len, "id");
    EVS_CHECK_ARG(saga, "saga");
    return EmitInfo(engine->engine->get(View(id, id_len)), saga, errmsg);
  });
}

int evs_saga_wait(evs_saga_engine_t* engine, const char* id, size_t id_len, uint64_t timeout_ms,
                  evs_saga_info_t** saga, char** errmsg) {
  return Guard(errmsg, [&] {
    if (saga) *saga = nullptr;
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(id, id_len, "id");
    return EmitInfo(engine->engine->wait(View(id, id_len), Ms(timeout_ms)), saga, errmsg);
  });
}

int evs_saga_wait_idle(evs_saga_engine_t* engine, uint64_t timeout_ms, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    return FromStatus(engine->engine->wait_idle(Ms(timeout_ms)), errmsg);
  });
}

int evs_saga_list(evs_saga_engine_t* engine, int state, const char* after_id, size_t after_id_len,
                  uint64_t limit, evs_saga_list_t** list, char** errmsg) {
  return Guard(errmsg, [&] {
    if (list) *list = nullptr;
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(after_id, after_id_len, "after_id");
    EVS_CHECK_ARG(list, "list");
    if (!ValidState(state)) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not a saga state");
    auto r = engine->engine->list(static_cast<SagaState>(state), View(after_id, after_id_len),
                                  Count(limit));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    auto out = std::make_unique<evs_saga_list_t>();
    out->sagas.reserve(r->sagas.size());
    for (SagaInfo& i : r->sagas)
      out->sagas.push_back(std::make_unique<evs_saga_info_t>(std::move(i)));
    out->next_after = std::move(r->next_after);
    out->damaged = std::move(r->damaged);
    *list = out.release();
    return EVS_OK;
  });
}

int evs_saga_retry(evs_saga_engine_t* engine, const char* id, size_t id_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(id, id_len, "id");
    return FromStatus(engine->engine->retry(View(id, id_len)), errmsg);
  });
}

int evs_saga_resolve(evs_saga_engine_t* engine, const char* id, size_t id_len, const char* note,
                     size_t note_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(engine, "engine");
    EVS_CHECK_BUF(id, id_len, "id");
    EVS_CHECK_BUF(note, note_len, "note");
    return FromStatus(engine->engine->resolve(View(id, id_len), View(note, note_len)), errmsg);
  });
}

// ---- Lists and infos ----

size_t evs_saga_list_size(const evs_saga_list_t* list) { return list ? list->sagas.size() : 0; }

const evs_saga_info_t* evs_saga_list_get(const evs_saga_list_t* list, size_t i) {
  return list && i < list->sagas.size() ? list->sagas[i].get() : nullptr;
}

const char* evs_saga_list_next_after(const evs_saga_list_t* list, size_t* len) {
  if (!list || list->next_after.empty()) return NoBytes(len);
  return Bytes(list->next_after, len);
}

size_t evs_saga_list_damaged_count(const evs_saga_list_t* list) {
  return list ? list->damaged.size() : 0;
}

const char* evs_saga_list_damaged_id(const evs_saga_list_t* list, size_t i, size_t* len) {
  if (!list || i >= list->damaged.size()) return NoBytes(len);
  return Bytes(list->damaged[i], len);
}

void evs_saga_list_destroy(evs_saga_list_t* list) { delete list; }

size_t evs_saga_damaged_count(const evs_saga_damaged_t* damaged) {
  return damaged ? damaged->entries.size() : 0;
}

int evs_saga_damaged_get(const evs_saga_damaged_t* damaged, size_t i, const char** id,
                         size_t* id_len, int* code, const char** message, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(damaged, "damaged");
    if (i >= damaged->entries.size())
      return Fail(errmsg, EVS_INVALID_ARGUMENT,
                  "damaged saga " + std::to_string(i) + " is out of range (" +
                      std::to_string(damaged->entries.size()) + " entries)");
    const evs_saga_damaged_t::Entry& e = damaged->entries[i];
    if (id) *id = Bytes(e.id, id_len);
    else if (id_len) *id_len = e.id.size();
    if (code) *code = e.code;
    if (message) *message = e.message.c_str();
    return EVS_OK;
  });
}

void evs_saga_damaged_destroy(evs_saga_damaged_t* damaged) { delete damaged; }

void evs_saga_info_destroy(evs_saga_info_t* saga) { delete saga; }

const char* evs_saga_info_id(const evs_saga_info_t* saga, size_t* len) {
  return saga ? Bytes(saga->info->id, len) : NoBytes(len);
}
const char* evs_saga_info_definition(const evs_saga_info_t* saga, size_t* len) {
  return saga ? Bytes(saga->info->definition, len) : NoBytes(len);
}
uint32_t evs_saga_info_version(const evs_saga_info_t* saga) { return saga ? saga->info->version : 0; }
int evs_saga_info_state(const evs_saga_info_t* saga) {
  return saga ? static_cast<int>(saga->info->state) : 0;
}
int evs_saga_info_stuck_in(const evs_saga_info_t* saga) {
  return saga ? static_cast<int>(saga->info->stuck_in) : 0;
}
int32_t evs_saga_info_step(const evs_saga_info_t* saga) { return saga ? saga->info->step : 0; }
uint32_t evs_saga_info_attempt(const evs_saga_info_t* saga) { return saga ? saga->info->attempt : 0; }
uint32_t evs_saga_info_attempts_started(const evs_saga_info_t* saga) {
  return saga ? saga->info->attempts_started : 0;
}
const char* evs_saga_info_input(const evs_saga_info_t* saga, size_t* len) {
  return saga ? Bytes(saga->info->input, len) : NoBytes(len);
}
size_t evs_saga_info_output_count(const evs_saga_info_t* saga) {
  return saga ? saga->info->outputs.size() : 0;
}
const char* evs_saga_info_output(const evs_saga_info_t* saga, size_t i, size_t* len) {
  if (!saga || i >= saga->info->outputs.size()) return NoBytes(len);
  return Bytes(saga->info->outputs[i], len);
}
const char* evs_saga_info_error(const evs_saga_info_t* saga, size_t* len) {
  return saga ? Bytes(saga->info->error, len) : NoBytes(len);
}
int64_t evs_saga_info_created_ms(const evs_saga_info_t* saga) {
  return saga ? saga->info->created_ms : 0;
}
int64_t evs_saga_info_updated_ms(const evs_saga_info_t* saga) {
  return saga ? saga->info->updated_ms : 0;
}
int evs_saga_info_resolved_by_hand(const evs_saga_info_t* saga) {
  return saga && saga->info->resolved_by_hand ? 1 : 0;
}
size_t evs_saga_info_history_count(const evs_saga_info_t* saga) {
  return saga ? saga->info->history.size() : 0;
}
uint32_t evs_saga_info_history_dropped(const evs_saga_info_t* saga) {
  return saga ? saga->info->history_dropped : 0;
}
int evs_saga_info_history(const evs_saga_info_t* saga, size_t i, int* event, int* state,
                          int32_t* step, uint32_t* attempt, int64_t* time_ms, const char** text,
                          size_t* text_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(saga, "saga");
    if (i >= saga->info->history.size())
      return Fail(errmsg, EVS_INVALID_ARGUMENT,
                  "history entry " + std::to_string(i) + " is out of range (" +
                      std::to_string(saga->info->history.size()) + " entries)");
    const evstore::SagaHistoryEntry& h = saga->info->history[i];
    if (event) *event = static_cast<int>(h.event);
    if (state) *state = static_cast<int>(h.state);
    if (step) *step = h.step;
    if (attempt) *attempt = h.attempt;
    if (time_ms) *time_ms = h.time_ms;
    if (text) *text = Bytes(h.text, text_len);
    else if (text_len) *text_len = h.text.size();
    return EVS_OK;
  });
}

}  // extern "C"
