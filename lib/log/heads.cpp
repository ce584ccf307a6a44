// Stream heads: the head cache, and loading a head from the log.
#include <memory>
#include <string>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "common/tsan.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

Status StoreImpl::LoadHead(std::string_view stream, StreamHead* head, bool bounded) {
  *head = StreamHead();
  uint64_t limit = bounded ? visible() : UINT64_MAX;
  // A bounded load runs on a reader's thread and reads entries of groups
  // that are being written (and skips them): RocksDB orders those reads,
  // out of ThreadSanitizer's sight (lib/common/tsan.hpp).
  StreamHead found;
  Status s;
  {
    IgnoreRocksReads rocks_reads(bounded);
    s = LoadHeadBelow(stream, limit, &found);
  }
  if (s.ok()) *head = found;
  return s;
}

Status StoreImpl::LoadHeadBelow(std::string_view stream, uint64_t limit, StreamHead* head) {
  rocksdb::ReadOptions ro;
  std::string value;
  rocksdb::Status gs = db_->Get(ro, cfs_[kCfStreams], rocksdb::Slice(stream.data(), stream.size()), &value);
  if (gs.IsNotFound()) return Status::OK();
  if (!gs.ok()) return StatusFromRocks(gs, "reading stream '" + std::string(stream) + "'");
  std::string scratch;
  format::StreamFields f{};
  Status ds = format::DecodeStream(stream, value, &scratch, &f);
  if (!ds.ok()) return ds;
  head->stream_id = f.stream_id;
  // The head is the stream's last key in stream_index: one seek.
  format::StreamIndexKey lower(f.stream_id, 0), upper(f.stream_id + 1, 0);
  rocksdb::Slice ub(upper.view().data(), 16);
  ro.iterate_upper_bound = &ub;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfStreamIndex]));
  format::StreamIndexKey last(f.stream_id, UINT64_MAX);
  it->SeekForPrev(rocksdb::Slice(last.view().data(), 16));
  while (it->Valid()) {
    auto k = format::DecodeStreamIndexKey(std::string_view(it->key().data(), it->key().size()));
    auto p = format::DecodePositionValue(std::string_view(it->value().data(), it->value().size()));
    if (!k || !p || k->stream_id != f.stream_id)
      return Status::Corruption("stream_index entry of stream '" + std::string(stream) +
                                "' is malformed");
    if (*p < limit) {
      head->exists = true;
      head->last_version = k->version;
      head->last_position = *p;
      return Status::OK();
    }
    it->Prev();  // written by a group that is not published yet
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading stream_index");
  return Status::OK();
}

bool StoreImpl::CachedHead(std::string_view stream, StreamHead* head) {
  if (!heads_) return false;
  auto h = heads_->get(std::string(stream));
  if (!h) return false;
  *head = *h;
  return true;
}

}  // namespace evstore::internal
