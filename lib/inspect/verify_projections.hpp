// inspect: the part of Verify (verify.cpp) that checks the `projections`
// column family (docs/format.md): meta records, instance records and state
// keys. Internal to the inspect component.
#ifndef EVSTORE_LIB_INSPECT_VERIFY_PROJECTIONS_HPP_
#define EVSTORE_LIB_INSPECT_VERIFY_PROJECTIONS_HPP_

#include <cstdint>
#include <functional>
#include <string>

#include "evstore/inspect.hpp"
#include "inspect/read_view.hpp"

namespace evstore::inspect {

// Verify's report of one problem: column family, printable key, position
// (Problem::kNoPosition when none), message.
using ReportFn = std::function<void(internal::Cf, std::string, uint64_t, std::string)>;

// Checks every record of `projections` at the view's snapshot, reporting
// each problem: a key of none of the three kinds; a meta or instance record
// that does not decode (under its key); a meta that names no instance, an
// instance without a record, an instance of another name or version, or an
// instance another meta names too; an instance whose checkpoint lies beyond
// `log_end` (the position the next event gets); state keys of an instance
// that has no record (once per instance). An instance that no meta names is
// not a problem: an interrupted deletion leaves it, and the projection's
// next start deletes it. Nothing to check when the store has no
// `projections` column family (a store from before projections, opened
// read-only). Progress goes to `progress` as phase "projections".
void VerifyProjections(const ReadView& view, uint64_t log_end, const ProgressFn& progress,
                       const ReportFn& report);

}  // namespace evstore::inspect

#endif  // EVSTORE_LIB_INSPECT_VERIFY_PROJECTIONS_HPP_
