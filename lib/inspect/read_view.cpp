#include "inspect/read_view.hpp"

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

}  // namespace evstore::inspect
