// inspect: Verify's checks of the `projections` column family
// (verify_projections.hpp). Keys sort 'I' (instances) < 'M' (metas) < 'S'
// (state), so one scan sees every instance record before the metas that
// name them and the state keys that belong to them.
#include "inspect/verify_projections.hpp"

#include <map>
#include <set>

#include "common/utf8.hpp"
#include "format/keys.hpp"
#include "format/projection_record.hpp"

namespace evstore::inspect {

namespace {

using internal::Cf;
using internal::kCfProjections;

// run_projection's limit on names (lib/projection/runner.cpp).
constexpr size_t kMaxProjectionName = 256;

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  AppendEscaped(s, &out);
  out.push_back('"');
  return out;
}

std::string InstanceLabel(uint64_t id) { return "instance " + std::to_string(id); }

// What the scan learnt of one instance record.
struct Instance {
  bool sound = false;  // decoded
  std::string name;
  uint32_t version = 0;
  std::string named_by;  // the meta naming it ("" while none)
};

class ProjectionChecks {
 public:
  ProjectionChecks(uint64_t log_end, const ReportFn& report) : log_end_(log_end), report_(report) {}

  void Record(std::string_view key, std::string_view value) {
    if (key.empty()) return Malformed(key);
    switch (key[0]) {
      case format::kProjInstanceTag: return CheckInstance(key, value);
      case format::kProjMetaTag: return CheckMeta(key, value);
      case format::kProjStateTag: return CheckState(key);
      default: return Malformed(key);
    }
  }

  void Finish() { ReportOrphanState(); }

 private:
  void Report(std::string key, uint64_t position, std::string message) {
    report_(kCfProjections, std::move(key), position, std::move(message));
  }

  void Malformed(std::string_view key) {
    std::string hex = "0x";
    static const char* kHex = "0123456789abcdef";
    for (char c : key) {
      hex += kHex[static_cast<uint8_t>(c) >> 4];
      hex += kHex[static_cast<uint8_t>(c) & 15];
    }
    Report(hex, Problem::kNoPosition, "malformed key (not 'M' + name, 'I' + 8-byte id or 'S' + id + key)");
  }

  void CheckInstance(std::string_view key, std::string_view value) {
    if (key.size() != 9) return Malformed(key);
    const uint64_t id = format::GetBE64(key.data() + 1);
    Instance& inst = instances_[id];
    format::ProjectionInstance rec;
    Status ds = format::DecodeProjectionInstance(key, value, &rec);
    if (!ds.ok()) return Report(InstanceLabel(id), Problem::kNoPosition, std::string(ds.message()));
    inst.sound = true;
    inst.name = rec.name;
    inst.version = rec.version;
    if (rec.position > log_end_)
      Report(InstanceLabel(id) + " of " + Quoted(rec.name), rec.position,
             "checkpoint at position " + std::to_string(rec.position) +
                 ", beyond the end of the log (the next event gets " + std::to_string(log_end_) +
                 "): events its state covers are missing");
  }

  void CheckMeta(std::string_view key, std::string_view value) {
    const std::string_view name = key.substr(1);
    const std::string label = Quoted(name);
    if (name.empty() || name.size() > kMaxProjectionName || !IsValidName(name))
      Report(label, Problem::kNoPosition, "projection name is empty, longer than 256 bytes, not UTF-8 or holds NUL");
    format::ProjectionMeta meta;
    Status ds = format::DecodeProjectionMeta(key, value, &meta);
    if (!ds.ok()) return Report(label, Problem::kNoPosition, std::string(ds.message()));
    if (meta.active_id == 0) {
      Report(label, Problem::kNoPosition, "names no serving instance (instance id 0)");
    } else {
      CheckNamed(name, label, "serving", meta.active_id, meta.active_version);
    }
    if (meta.building_id != 0) {
      if (meta.building_id == meta.active_id)
        Report(label, Problem::kNoPosition,
               "names " + InstanceLabel(meta.building_id) + " both as serving and as being rebuilt");
      else
        CheckNamed(name, label, "rebuilt", meta.building_id, meta.building_version);
    }
  }

  // A meta's instance: it has a sound record of that projection and version,
  // which no other meta names.
  void CheckNamed(std::string_view name, const std::string& label, const char* role, uint64_t id,
                  uint32_t version) {
    auto it = instances_.find(id);
    const std::string what = std::string("its ") + role + " " + InstanceLabel(id);
    if (it == instances_.end()) return Report(label, Problem::kNoPosition, what + " has no record");
    Instance& inst = it->second;
    if (!inst.sound) return;  // reported with the record
    if (inst.name != name)
      Report(label, Problem::kNoPosition, what + " is a record of projection " + Quoted(inst.name));
    if (inst.version != version)
      Report(label, Problem::kNoPosition,
             what + " has handler version " + std::to_string(inst.version) + ", the meta record " +
                 std::to_string(version));
    if (!inst.named_by.empty())
      Report(label, Problem::kNoPosition, what + " is named by projection " + Quoted(inst.named_by) + " too");
    else
      inst.named_by = std::string(name);
  }

  // State keys come grouped by instance id: each instance without a record
  // is reported once, with how many keys it has and the first.
  void CheckState(std::string_view key) {
    if (key.size() < 10) return Malformed(key);
    const uint64_t id = format::GetBE64(key.data() + 1);
    if (instances_.count(id)) return;
    if (orphan_ && orphan_id_ == id) {
      orphan_keys_++;
      return;
    }
    ReportOrphanState();
    orphan_ = true;
    orphan_id_ = id;
    orphan_keys_ = 1;
    orphan_first_ = std::string(key.substr(9));
  }

  void ReportOrphanState() {
    if (!orphan_) return;
    orphan_ = false;
    Report(InstanceLabel(orphan_id_) + " key " + Quoted(orphan_first_), Problem::kNoPosition,
           std::to_string(orphan_keys_) + " state key(s) of " + InstanceLabel(orphan_id_) +
               ", which has no instance record");
  }

  const uint64_t log_end_;
  const ReportFn& report_;
  std::map<uint64_t, Instance> instances_;
  bool orphan_ = false;
  uint64_t orphan_id_ = 0;
  uint64_t orphan_keys_ = 0;
  std::string orphan_first_;
};

}  // namespace

void VerifyProjections(const ReadView& view, uint64_t log_end, const ProgressFn& progress,
                       const ReportFn& report) {
  if (view.store().cf(kCfProjections) == nullptr) return;
  Ticker t(progress, "projections", EstimateKeys(view, kCfProjections));
  ProjectionChecks checks(log_end, report);
  auto it = view.Cursor(kCfProjections);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    checks.Record(it->key(), it->value());
  }
  checks.Finish();
  if (!it->status().ok())
    report(kCfProjections, "projections", Problem::kNoPosition,
           "cannot be read to its end: " + std::string(it->status().message()));
  t.Finish();
}

}  // namespace evstore::inspect
