#include "inspect/read_view.hpp"

#include "format/keys.hpp"

namespace evstore::inspect {

ReadView::ReadView(const Store& store) : impl_(internal::StoreAccess::Impl(store)) {
  if (impl_ == nullptr) {
    status_ = Status::Closed("store is closed");
    return;
  }
  guard_.emplace(impl_);
  if (guard_->closed()) {
    status_ = Status::Closed("store is closed");
    return;
  }
  snap_.emplace(*impl_);
}

std::unique_ptr<internal::CfCursor> ReadView::Cursor(internal::Cf cf, std::string upper) const {
  internal::CfCursorOptions o;
  o.upper = std::move(upper);
  o.snapshot = &*snap_;
  o.fill_cache = false;
  return std::make_unique<internal::CfCursor>(*impl_, cf, std::move(o));
}

Status ReadView::Get(internal::Cf cf, std::string_view key, std::string* value) const {
  return internal::CfGet(*impl_, cf, key, value, &*snap_);
}

uint64_t LogEnd(const ReadView& view) {
  uint64_t end = view.store().visible();
  auto it = view.Cursor(internal::kCfEvents);
  it->SeekToLast();
  if (it->Valid()) {
    if (auto p = format::DecodeEventKey(it->key()); p && *p != UINT64_MAX)
      end = std::max(end, *p + 1);
  }
  return end;
}

}  // namespace evstore::inspect
