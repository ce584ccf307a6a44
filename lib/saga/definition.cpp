// Saga definitions: names, fingerprints, validation, and the handler context.
#include <xxhash.h>

#include <cmath>
#include <string>
#include <unordered_set>

#include "common/utf8.hpp"
#include "evstore/saga.hpp"
#include "format/keys.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

const char* SagaStateName(SagaState s) noexcept {
  switch (s) {
    case SagaState::kPending: return "pending";
    case SagaState::kRunning: return "running";
    case SagaState::kCompensating: return "compensating";
    case SagaState::kCompleted: return "completed";
    case SagaState::kCompensated: return "compensated";
    case SagaState::kStuck: return "stuck";
  }
  return "unknown";
}

const char* SagaEventName(SagaEvent e) noexcept {
  switch (e) {
    case SagaEvent::kStarted: return "started";
    case SagaEvent::kStepCompleted: return "step completed";
    case SagaEvent::kStepFailed: return "step failed";
    case SagaEvent::kStepTimedOut: return "step timed out";
    case SagaEvent::kCompensationStarted: return "compensation started";
    case SagaEvent::kStepCompensated: return "step compensated";
    case SagaEvent::kCompensationFailed: return "compensation failed";
    case SagaEvent::kCompensationTimedOut: return "compensation timed out";
    case SagaEvent::kCompleted: return "completed";
    case SagaEvent::kCompensated: return "compensated";
    case SagaEvent::kStuck: return "stuck";
    case SagaEvent::kRetried: return "retried by hand";
    case SagaEvent::kResolved: return "resolved by hand";
    case SagaEvent::kStepInterrupted: return "step interrupted";
    case SagaEvent::kCompensationInterrupted: return "compensation interrupted";
  }
  return "unknown";
}

uint64_t SagaDefinition::fingerprint() const {
  std::string canon = "evstore.saga.1";
  canon.push_back('\0');
  canon += name;
  canon.push_back('\0');
  char buf[8];
  format::PutLE64(buf, version);
  canon.append(buf, 8);
  format::PutLE64(buf, steps.size());
  canon.append(buf, 8);
  for (const StepDefinition& s : steps) {
    canon += s.name;
    canon.push_back('\0');
    canon.push_back(s.compensation ? 'c' : '-');
  }
  return XXH3_64bits(canon.data(), canon.size());
}

std::string_view StepContext::output_of(std::string_view name) const {
  for (size_t i = 0; i < step_names.size() && i < outputs.size(); i++)
    if (step_names[i] == name) return outputs[i];
  return {};
}

Uuid StepContext::event_id(uint32_t n) const {
  std::string material(idempotency_key);
  char buf[8];
  format::PutLE64(buf, n);
  material.append(buf, 8);
  XXH128_hash_t h = XXH3_128bits(material.data(), material.size());
  Uuid u;
  format::PutBE64(reinterpret_cast<char*>(u.bytes), h.high64);
  format::PutBE64(reinterpret_cast<char*>(u.bytes + 8), h.low64);
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x80);  // version 8: custom
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}

namespace saga {
namespace {

Status CheckPolicy(const RetryPolicy& p, const std::string& where) {
  if (p.max_attempts < 1) return Status::InvalidArgument(where + ": max_attempts must be at least 1");
  if (p.initial_backoff.count() < 0 || p.max_backoff.count() < 0)
    return Status::InvalidArgument(where + ": backoffs must not be negative");
  if (!(p.multiplier >= 1.0) || !std::isfinite(p.multiplier))
    return Status::InvalidArgument(where + ": multiplier must be a finite number >= 1");
  if (!(p.jitter >= 0.0 && p.jitter <= 1.0))
    return Status::InvalidArgument(where + ": jitter must be between 0 and 1");
  return Status::OK();
}

}  // namespace

Status ValidateDefinition(const SagaDefinition& d) {
  if (d.name.empty() || !IsValidName(d.name) || d.name.size() > kMaxNameBytes)
    return Status::InvalidArgument("saga definition name must be 1.." +
                                   std::to_string(kMaxNameBytes) + " bytes of UTF-8 without NUL");
  std::string what = "saga definition '" + d.name + "' v" + std::to_string(d.version);
  if (d.steps.empty()) return Status::InvalidArgument(what + " has no steps");
  std::unordered_set<std::string_view> names;
  for (const StepDefinition& s : d.steps) {
    if (s.name.empty() || !IsValidName(s.name) || s.name.size() > kMaxNameBytes)
      return Status::InvalidArgument(what + ": a step name must be 1.." +
                                     std::to_string(kMaxNameBytes) +
                                     " bytes of UTF-8 without NUL");
    if (!names.insert(s.name).second)
      return Status::InvalidArgument(what + ": step '" + s.name + "' appears twice");
    if (!s.action) return Status::InvalidArgument(what + ": step '" + s.name + "' has no action");
    if (s.timeout.count() <= 0)
      return Status::InvalidArgument(what + ": step '" + s.name + "' needs a positive timeout");
    Status ps = CheckPolicy(s.retry, what + ", step '" + s.name + "' retry");
    if (!ps.ok()) return ps;
    ps = CheckPolicy(s.compensation_retry, what + ", step '" + s.name + "' compensation_retry");
    if (!ps.ok()) return ps;
  }
  return Status::OK();
}

Status ValidateSagaId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNameBytes || !IsValidName(id))
    return Status::InvalidArgument("saga id must be 1.." + std::to_string(kMaxNameBytes) +
                                   " bytes of UTF-8 without NUL");
  return Status::OK();
}

}  // namespace saga
}  // namespace evstore
