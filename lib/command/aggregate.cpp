// Aggregates: loading state from the cache, snapshots and the log
// (aggregate_impl.hpp), and the public UntypedAggregate handle.
#include <algorithm>

#include "command/aggregate_impl.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "evstore/store.hpp"
#include "evstore/upcast.hpp"
#include "format/keys.hpp"
#include "format/snapshot_record.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"

namespace evstore {

using internal::AggregateEntry;
using internal::EntryPtr;
using internal::StateKey;

namespace internal {

Status ValidAggregateName(std::string_view name) {
  if (name.empty() || name.size() > 256 || !IsValidName(name))
    return Status::InvalidArgument("aggregate name must be 1..256 bytes of UTF-8 without NUL");
  return Status::OK();
}

}  // namespace internal

namespace {

// Runs user code, turning an exception into Aborted naming `what`.
template <typename F>
auto Guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Aborted(std::string(what) + " threw: " + e.what());
  } catch (...) {
    return Status::Aborted(std::string(what) + " threw an exception");
  }
}

// Hints are only hints: past this many streams they are forgotten.
constexpr size_t kMaxHints = 1u << 16;
// The L2 form of an entry: version, position, stream id and the snapshot
// counters (5 x u64 BE), then the codec's bytes.
constexpr size_t kEntryHeader = 40;

}  // namespace

const char* LoadSourceName(LoadSource s) noexcept {
  switch (s) {
    case LoadSource::kCache: return "cache";
    case LoadSource::kCacheAndLog: return "cache+log";
    case LoadSource::kSnapshot: return "snapshot";
    case LoadSource::kLog: return "log";
    case LoadSource::kEmpty: return "empty";
  }
  return "unknown";
}

UntypedAggregate::Impl::Impl(std::shared_ptr<internal::StoreImpl> store, AggregateOptions options,
                             StateOps ops)
    : store_(std::move(store)), o_(std::move(options)), ops_(std::move(ops)) {}

UntypedAggregate::Impl::~Impl() {
  if (writer_) writer_->Stop();
}

Status UntypedAggregate::Impl::Init() {
  Result<std::shared_ptr<void>> init = Guarded("make_initial", [&]() -> Result<std::shared_ptr<void>> {
    return ops_.make_initial();
  });
  if (!init.ok()) return init.status();
  if (*init == nullptr) return Status::InvalidArgument("aggregate: make_initial returned no state");
  initial_ = std::move(init).value();

  if (o_.cache_l1_bytes + o_.cache_l2_bytes > 0) {
    CacheOptions co;
    co.l1.capacity = o_.cache_l1_bytes;
    co.l2.capacity = ops_.encode ? o_.cache_l2_bytes : 0;
    Cache::Codec codec;
    if (ops_.encode) {
      codec.encode = [this](const EntryPtr& e) {
        Result<std::string> b = ops_.encode(e->state.get());
        if (!b.ok()) throw std::runtime_error(b.status().ToString());
        std::string out(kEntryHeader, '\0');
        format::PutBE64(out.data(), static_cast<uint64_t>(e->version));
        format::PutBE64(out.data() + 8, e->position);
        format::PutBE64(out.data() + 16, e->stream_id);
        format::PutBE64(out.data() + 24, e->events_since_snapshot);
        format::PutBE64(out.data() + 32, e->bytes_since_snapshot);
        out += *b;
        return out;
      };
      codec.decode = [this](std::string_view b) -> Result<EntryPtr> {
        if (b.size() < kEntryHeader) return Status::Corruption("cached state is too short");
        Result<std::shared_ptr<void>> s = ops_.decode(b.substr(kEntryHeader));
        if (!s.ok()) return s.status();
        auto e = std::make_shared<AggregateEntry>();
        e->state = std::move(s).value();
        e->version = static_cast<int64_t>(format::GetBE64(b.data()));
        e->position = format::GetBE64(b.data() + 8);
        e->stream_id = format::GetBE64(b.data() + 16);
        e->events_since_snapshot = format::GetBE64(b.data() + 24);
        e->bytes_since_snapshot = format::GetBE64(b.data() + 32);
        return EntryPtr(std::move(e));
      };
    }
    Cache::Weighers w;
    w.decoded = [this](const StateKey& k, const EntryPtr& e) {
      return static_cast<uint64_t>(sizeof(AggregateEntry) + k.stream.size() + 64 +
                                   (ops_.weigh ? ops_.weigh(e->state.get()) : 256));
    };
    w.encoded = [](const StateKey& k, std::string_view b) {
      return static_cast<uint64_t>(b.size() + k.stream.size() + 64);
    };
    cache_ = std::make_unique<Cache>(co, std::move(codec), std::move(w));
  }
  if (ops_.encode && (o_.snapshots.every_events > 0 || o_.snapshots.every_bytes > 0) &&
      !store_->options().read_only) {
    writer_ = std::make_unique<internal::SnapshotWriter>(
        store_, o_.name, std::max<size_t>(1, o_.max_pending_snapshots),
        [this](const std::string& stream, const AggregateEntry& e) { return EncodeSnapshot(stream, e); },
        [this](const Status& s) { NoteSnapshotError(s); },
        [this](uint64_t n) { NoteSnapshotWritten(n); });
  }
  return Status::OK();
}

void UntypedAggregate::Impl::NoteSnapshotError(const Status& s) {
  st_snapshot_errors_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> l(err_mu_);
  last_snapshot_error_ = s.ToString();
}

void UntypedAggregate::Impl::CountSource(LoadSource s) {
  st_loads_.fetch_add(1, std::memory_order_relaxed);
  switch (s) {
    case LoadSource::kCache: st_cache_.fetch_add(1, std::memory_order_relaxed); break;
    case LoadSource::kCacheAndLog: st_cache_log_.fetch_add(1, std::memory_order_relaxed); break;
    case LoadSource::kSnapshot: st_snapshot_.fetch_add(1, std::memory_order_relaxed); break;
    case LoadSource::kLog: st_log_.fetch_add(1, std::memory_order_relaxed); break;
    case LoadSource::kEmpty: break;
  }
}

void UntypedAggregate::Impl::SetHint(std::string_view stream, uint64_t version) {
  std::lock_guard<std::mutex> l(hint_mu_);
  if (hints_.size() >= kMaxHints) hints_.clear();
  auto [it, fresh] = hints_.try_emplace(std::string(stream), version);
  if (!fresh && it->second < version) it->second = version;
}

std::optional<uint64_t> UntypedAggregate::Impl::GetHint(std::string_view stream) {
  std::lock_guard<std::mutex> l(hint_mu_);
  auto it = hints_.find(std::string(stream));
  if (it == hints_.end()) return std::nullopt;
  return it->second;
}

Result<UntypedAggregate::Loaded> UntypedAggregate::Impl::Load(std::string_view stream) {
  // The published head first: whatever follows is at least this recent.
  Result<StreamInfo> head = store_->StreamHeadOf(stream);
  if (!head.ok()) {
    if (!head.status().IsNotFound()) return head.status();
    CountSource(LoadSource::kEmpty);
    return Loaded{initial_, -1, 0, LoadSource::kEmpty};
  }
  LoadSource source = LoadSource::kCache;
  Result<EntryPtr> e = Status::OK();
  if (cache_) {
    e = cache_->get_or_load(StateKey{std::string(stream), head->last_version},
                            [&] { return Compute(stream, *head, &source); });
  } else {
    e = Compute(stream, *head, &source);
  }
  if (!e.ok()) return e.status();
  CountSource(source);
  const AggregateEntry& entry = **e;
  return Loaded{entry.state, entry.version, entry.position, source};
}

Result<EntryPtr> UntypedAggregate::Impl::Compute(std::string_view stream, const StreamInfo& head,
                                                 LoadSource* source) {
  EntryPtr base;
  *source = LoadSource::kLog;
  if (cache_) {
    std::optional<uint64_t> hint = GetHint(stream);
    if (hint && *hint != head.last_version) {
      std::optional<EntryPtr> c = cache_->get(StateKey{std::string(stream), *hint});
      if (c && (*c)->stream_id == head.stream_id) {
        base = *c;
        *source = LoadSource::kCacheAndLog;
      }
    }
  }
  if (!base) {
    Result<EntryPtr> snap = ReadSnapshot(stream, head);
    if (!snap.ok()) return snap.status();
    if (*snap) {
      base = std::move(snap).value();
      *source = LoadSource::kSnapshot;
    }
  }
  // A state at least as new as the head (another load got further since
  // this one read the head) is served as it is.
  if (base && base->version >= static_cast<int64_t>(head.last_version)) {
    if (*source == LoadSource::kCacheAndLog) *source = LoadSource::kCache;
    return base;
  }

  std::shared_ptr<void> state;
  Result<std::shared_ptr<void>> made = Guarded("aggregate state copy", [&]() -> Result<std::shared_ptr<void>> {
    return base ? ops_.clone(base->state.get()) : ops_.make_initial();
  });
  if (!made.ok()) return made.status();
  state = std::move(made).value();
  if (!state) return Status::Aborted("aggregate: clone or make_initial returned no state");

  uint64_t events = 0, bytes = 0;
  Status s = Fold(stream, head, base ? base->version : -1, state.get(), &events, &bytes);
  if (!s.ok()) return s;

  auto entry = std::make_shared<AggregateEntry>();
  entry->state = std::move(state);
  entry->version = static_cast<int64_t>(head.last_version);
  entry->position = head.last_position;
  entry->stream_id = head.stream_id;
  entry->events_since_snapshot = (base ? base->events_since_snapshot : 0) + events;
  entry->bytes_since_snapshot = (base ? base->bytes_since_snapshot : 0) + bytes;
  MaybeQueueSnapshot(stream, entry);
  EntryPtr result = std::move(entry);
  if (cache_) {
    // The older state is superseded by this one.
    if (*source == LoadSource::kCacheAndLog)
      cache_->erase(StateKey{std::string(stream), static_cast<uint64_t>(base->version)});
    SetHint(stream, head.last_version);
  }
  return result;
}

Status UntypedAggregate::Impl::Fold(std::string_view stream, const StreamInfo& head,
                                    int64_t from_version, void* state, uint64_t* events,
                                    uint64_t* bytes) {
  uint64_t first = static_cast<uint64_t>(from_version + 1);
  if (first > head.last_version) return Status::OK();
  uint64_t want = head.last_version - first + 1;
  Result<EventIterator> it = store_->ReadStream(stream, first, Direction::kForward, want);
  if (!it.ok()) return it.status();
  uint64_t expect = first;
  UpcastEvent scratch;
  EventView upcast;
  for (; it->Valid(); it->Next()) {
    const EventView& raw = it->value();
    if (raw.version != expect)
      return Status::Corruption("stream '" + std::string(stream) + "': expected version " +
                                std::to_string(expect) + ", read " + std::to_string(raw.version));
    const EventView* ev = &raw;
    if (o_.upcasters) {
      Status us = o_.upcasters->Upcast(raw, &scratch, &upcast);
      if (!us.ok())
        return Status(us.IsInvalidArgument() || us.IsCorruption() || us.IsNotSupported()
                          ? us
                          : Status::Aborted("aggregate '" + o_.name + "', stream '" +
                                            std::string(stream) + "' at version " +
                                            std::to_string(raw.version) + ": " +
                                            std::string(us.message())));
      ev = &upcast;
    }
    Status es = Guarded("evolve", [&] { return ops_.evolve(state, *ev); });
    if (!es.ok())
      return Status::Aborted("aggregate '" + o_.name + "': evolve failed on stream '" +
                             std::string(stream) + "' at version " + std::to_string(raw.version) +
                             ": " + es.ToString());
    st_folded_.fetch_add(1, std::memory_order_relaxed);
    (*events)++;
    *bytes += raw.data.size() + raw.metadata.size();
    expect++;
  }
  if (!it->status().ok()) return it->status();
  if (expect != head.last_version + 1)
    return Status::Corruption("stream '" + std::string(stream) + "' ended at version " +
                              std::to_string(expect) + " before its head " +
                              std::to_string(head.last_version));
  return Status::OK();
}

Result<EntryPtr> UntypedAggregate::Impl::ReadSnapshot(std::string_view stream,
                                                      const StreamInfo& head) {
  if (!ops_.decode) return EntryPtr();
  std::string key = format::SnapshotKey(o_.name, stream), value;
  {
    internal::StoreImpl::OpGuard g(store_.get());
    if (g.closed()) return Status::Closed("store is closed");
    Status s = internal::CfGet(*store_, internal::kCfSnapshots, key, &value);
    if (s.IsNotFound()) return EntryPtr();
    if (!s.ok()) return internal::InContext(s, "reading the snapshot of '" + std::string(stream) + "'");
  }
  format::SnapshotFields f;
  Status ds = format::DecodeSnapshot(key, value, &f);
  if (!ds.ok()) {
    NoteSnapshotError(ds);
    return EntryPtr();
  }
  if (f.schema != o_.snapshot_schema) {
    st_snapshots_ignored_.fetch_add(1, std::memory_order_relaxed);
    return EntryPtr();
  }
  if (f.stream_id != head.stream_id) {
    NoteSnapshotError(Status::Corruption("snapshot of '" + std::string(stream) +
                                         "' names another stream id"));
    return EntryPtr();
  }
  Result<std::shared_ptr<void>> st = Guarded("snapshot decode", [&]() -> Result<std::shared_ptr<void>> {
    return ops_.decode(f.state);
  });
  if (!st.ok() || *st == nullptr) {
    NoteSnapshotError(Status::Aborted("aggregate '" + o_.name + "': decoding the snapshot of '" +
                                      std::string(stream) + "' at version " +
                                      std::to_string(f.version) + " failed: " +
                                      (st.ok() ? std::string("no state") : st.status().ToString())));
    return EntryPtr();
  }
  auto e = std::make_shared<AggregateEntry>();
  e->state = std::move(st).value();
  e->version = static_cast<int64_t>(f.version);
  e->position = f.position;
  e->stream_id = f.stream_id;
  return EntryPtr(std::move(e));
}

void UntypedAggregate::Impl::MaybeQueueSnapshot(std::string_view stream,
                                                const std::shared_ptr<AggregateEntry>& e) {
  if (!writer_) return;
  bool due = (o_.snapshots.every_events > 0 && e->events_since_snapshot >= o_.snapshots.every_events) ||
             (o_.snapshots.every_bytes > 0 && e->bytes_since_snapshot >= o_.snapshots.every_bytes);
  if (!due) return;
  // The counters restart before the writer can see the entry (it is
  // immutable from then on), and come back if the queue refused it.
  const uint64_t events = e->events_since_snapshot, bytes = e->bytes_since_snapshot;
  e->events_since_snapshot = 0;
  e->bytes_since_snapshot = 0;
  if (!writer_->Enqueue(std::string(stream), e)) {
    e->events_since_snapshot = events;
    e->bytes_since_snapshot = bytes;
  }
}

Result<std::string> UntypedAggregate::Impl::EncodeSnapshot(std::string_view stream,
                                                           const AggregateEntry& e) {
  Result<std::string> bytes = Guarded("snapshot encode", [&]() -> Result<std::string> {
    return ops_.encode(e.state.get());
  });
  if (!bytes.ok())
    return Status::Aborted("aggregate '" + o_.name + "': encoding the state of '" +
                           std::string(stream) + "' at version " + std::to_string(e.version) +
                           " failed: " + bytes.status().ToString());
  if (bytes->size() > o_.max_snapshot_bytes)
    return Status::InvalidArgument("aggregate '" + o_.name + "': the state of '" +
                                   std::string(stream) + "' encodes to " +
                                   std::to_string(bytes->size()) + " bytes, over max_snapshot_bytes");
  format::SnapshotFields f;
  f.schema = o_.snapshot_schema;
  f.version = static_cast<uint64_t>(e.version);
  f.stream_id = e.stream_id;
  f.position = e.position;
  f.created_ms = NowMs();
  f.state = *bytes;
  return format::EncodeSnapshot(format::SnapshotKey(o_.name, stream), f);
}

Status UntypedAggregate::Impl::SaveSnapshot(std::string_view stream) {
  if (!ops_.encode) return Status::InvalidArgument("aggregate '" + o_.name + "' has no codec");
  Result<Loaded> l = Load(stream);
  if (!l.ok()) return l.status();
  if (l->version < 0) return Status::NotFound("stream '" + std::string(stream) + "' has no events");
  Result<StreamInfo> head = store_->StreamHeadOf(stream);
  if (!head.ok()) return head.status();
  AggregateEntry e;
  e.state = l->state;
  e.version = l->version;
  e.position = l->position;
  e.stream_id = head->stream_id;
  Result<std::string> rec = EncodeSnapshot(stream, e);
  if (!rec.ok()) {
    NoteSnapshotError(rec.status());
    return rec.status();
  }
  internal::ExtraWrite w;
  w.cf = internal::kCfSnapshots;
  w.key = format::SnapshotKey(o_.name, stream);
  w.value = std::move(rec).value();
  internal::CommitRequest req;
  req.extra = std::span<const internal::ExtraWrite>(&w, 1);
  req.sync = false;
  Status s = store_->Commit(&req);
  if (s.ok()) NoteSnapshotWritten(1);
  return s;
}

Status UntypedAggregate::Impl::FlushSnapshots() {
  if (writer_) writer_->Flush();
  return store_->closed() ? Status::Closed("store is closed") : Status::OK();
}

void UntypedAggregate::Impl::ClearCache() {
  if (cache_) cache_->clear();
  std::lock_guard<std::mutex> l(hint_mu_);
  hints_.clear();
}

AggregateStats UntypedAggregate::Impl::Stats() const {
  AggregateStats s;
  s.loads = st_loads_.load(std::memory_order_relaxed);
  s.from_cache = st_cache_.load(std::memory_order_relaxed);
  s.from_cache_and_log = st_cache_log_.load(std::memory_order_relaxed);
  s.from_snapshot = st_snapshot_.load(std::memory_order_relaxed);
  s.from_log = st_log_.load(std::memory_order_relaxed);
  s.events_folded = st_folded_.load(std::memory_order_relaxed);
  s.snapshots_written = st_snapshots_written_.load(std::memory_order_relaxed);
  s.snapshots_dropped = writer_ ? writer_->dropped() : 0;
  s.snapshot_errors = st_snapshot_errors_.load(std::memory_order_relaxed);
  s.snapshots_ignored = st_snapshots_ignored_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(err_mu_);
    s.last_snapshot_error = last_snapshot_error_;
  }
  if (cache_) s.cache = cache_->stats();
  return s;
}

// ---- UntypedAggregate ----

UntypedAggregate::UntypedAggregate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UntypedAggregate::~UntypedAggregate() = default;

Result<std::shared_ptr<UntypedAggregate>> UntypedAggregate::Open(Store& store,
                                                                 AggregateOptions options,
                                                                 StateOps ops) {
  internal::StoreImpl* impl = internal::StoreAccess::Impl(store);
  if (impl == nullptr) return Status::Closed("store handle was moved from");
  Status s = internal::ValidAggregateName(options.name);
  if (!s.ok()) return s;
  if (!ops.make_initial || !ops.clone || !ops.evolve)
    return Status::InvalidArgument("aggregate: make_initial, clone and evolve are required");
  if (static_cast<bool>(ops.encode) != static_cast<bool>(ops.decode))
    return Status::InvalidArgument("aggregate: a codec needs both encode and decode");
  bool snapshots = options.snapshots.every_events > 0 || options.snapshots.every_bytes > 0;
  if (snapshots && !ops.encode)
    return Status::InvalidArgument("aggregate '" + options.name + "': snapshots need a codec");
  if (options.cache_l2_bytes > 0 && !ops.encode)
    return Status::InvalidArgument("aggregate '" + options.name +
                                   "': the cache's L2 needs a codec");
  if (impl->closed()) return Status::Closed("store is closed");
  auto i = std::make_unique<Impl>(impl->shared_from_this(), std::move(options), std::move(ops));
  s = i->Init();
  if (!s.ok()) return s;
  return std::shared_ptr<UntypedAggregate>(new UntypedAggregate(std::move(i)));
}

Result<UntypedAggregate::Loaded> UntypedAggregate::Load(std::string_view stream) {
  return impl_->Load(stream);
}
Status UntypedAggregate::SaveSnapshot(std::string_view stream) { return impl_->SaveSnapshot(stream); }
Status UntypedAggregate::FlushSnapshots() { return impl_->FlushSnapshots(); }
void UntypedAggregate::ClearCache() { impl_->ClearCache(); }
AggregateStats UntypedAggregate::Stats() const { return impl_->Stats(); }
const std::string& UntypedAggregate::name() const { return impl_->name(); }

}  // namespace evstore
