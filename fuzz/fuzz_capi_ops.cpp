// Fuzz target: the store operation sequence of fuzz_store_ops, run through
// the C API (include/evstore/evstore.h) and compared against the same model.
// Also checks the C conventions on the way: a status is EVS_OK exactly when
// *errmsg is NULL, and an iterator reports its end without error. At each
// close + reopen and at the end, the store is opened read-only through the
// C++ API and inspect::Verify must find nothing wrong.
#include "evstore/evstore.h"
#include "store_model.hpp"

namespace {

int64_t ToC(ExpectedVersion e) {
  switch (e.kind()) {
    case ExpectedVersion::Kind::kAny: return EVS_EXPECT_ANY;
    case ExpectedVersion::Kind::kNoStream: return EVS_EXPECT_NO_STREAM;
    case ExpectedVersion::Kind::kStreamExists: return EVS_EXPECT_STREAM_EXISTS;
    case ExpectedVersion::Kind::kExact: break;
  }
  return static_cast<int64_t>(e.version());
}

std::vector<evs_event_t> ToC(const std::vector<EventData>& events) {
  std::vector<evs_event_t> out(events.size());
  for (size_t i = 0; i < events.size(); i++) {
    const EventData& e = events[i];
    evs_event_t& c = out[i];
    std::memcpy(c.id, e.id.bytes, 16);
    c.type = e.type.data();
    c.type_len = e.type.size();
    c.content_type = e.content_type.data();
    c.content_type_len = e.content_type.size();
    c.data = e.data.data();
    c.data_len = e.data.size();
    c.metadata = e.metadata.data();
    c.metadata_len = e.metadata.size();
  }
  return out;
}

// Checks the errmsg convention and frees the message. Takes the message's
// address: it is read only after the call that fills it has run.
int Checked(int rc, char** errp) {
  char* err = *errp;
  *errp = nullptr;
  if ((rc == EVS_OK) != (err == nullptr))
    std::fprintf(stderr, "status %d (%s) with message %s\n", rc, evs_errstr(rc),
                 err ? err : "(none)");
  FUZZ_CHECK((rc == EVS_OK) == (err == nullptr));
  evs_free(err);
  return rc;
}

AppendResult FromC(const evs_append_result_t& r) {
  AppendResult a;
  a.first_version = r.first_version;
  a.last_version = r.last_version;
  a.first_position = r.first_position;
  a.last_position = r.last_position;
  a.idempotent_replay = r.idempotent_replay != 0;
  return a;
}

void CheckIter(const Model& m, int rc, char** err, evs_iter_t* it, const std::vector<uint64_t>& want) {
  FUZZ_CHECK(Checked(rc, err) == EVS_OK && it != nullptr);
  size_t n = 0;
  for (; evs_iter_valid(it); evs_iter_next(it)) {
    FUZZ_CHECK(n < want.size());
    EventView v;
    std::memcpy(v.id.bytes, evs_iter_id(it), 16);
    size_t len = 0;
    const char* p = evs_iter_stream(it, &len);
    v.stream = std::string_view(p, len);
    p = evs_iter_type(it, &len);
    v.type = std::string_view(p, len);
    p = evs_iter_content_type(it, &len);
    v.content_type = std::string_view(p, len);
    p = static_cast<const char*>(evs_iter_data(it, &len));
    v.data = std::string_view(p, len);
    p = static_cast<const char*>(evs_iter_metadata(it, &len));
    v.metadata = std::string_view(p, len);
    v.version = evs_iter_version(it);
    v.position = evs_iter_position(it);
    FUZZ_CHECK(v.position == want[n]);
    CheckEvent(m, v);
    n++;
  }
  char* ierr = nullptr;
  FUZZ_CHECK(Checked(evs_iter_status(it, &ierr), &ierr) == EVS_OK);
  FUZZ_CHECK(n == want.size());
  evs_iter_destroy(it);
}

void VerifyReadOnly(const std::string& path, const Model& m) {
  Options o;
  o.read_only = true;
  o.create_if_missing = false;
  o.block_cache_bytes = 1u << 20;
  auto r = Store::open(path, o);
  FUZZ_CHECK(r.ok());
  CheckWhole(*r, m);
  FUZZ_CHECK(r->close().ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  TempDir dir;
  Model m;
  evs_options_t* opts = evs_options_create();
  FUZZ_CHECK(opts != nullptr);
  FUZZ_CHECK(evs_options_set_sync(opts, 0, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_block_cache_bytes(opts, 1u << 20, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_max_event_bytes(opts, 1024, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_max_events_per_append(opts, 8, nullptr) == EVS_OK);
  std::string path = dir.db();
  evs_store_t* s = nullptr;
  auto open = [&] {
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_store_open(path.c_str(), opts, &s, &err), &err) == EVS_OK);
    FUZZ_CHECK(s != nullptr);
  };
  auto close = [&] {
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_store_close(s, &err), &err) == EVS_OK);
    evs_store_destroy(s);
    s = nullptr;
  };
  open();
  int reopens = 0;
  for (int op = 0; op < 48 && !in.empty(); op++) {
    char* err = nullptr;
    uint8_t code = in.Byte() % 9;
    switch (code) {
      case 0:
      case 1: {  // append
        std::string stream = kStreams[in.Byte() % 4];
        ExpectedVersion exp = MakeExpected(in, m, stream);
        std::vector<EventData> events;
        size_t n = 1 + in.Byte() % 3;
        for (size_t i = 0; i < n; i++) events.push_back(MakeEvent(in));
        AppendResult replay;
        Outcome want = Predict(m, stream, exp, events, &replay);
        std::vector<evs_event_t> ce = ToC(events);
        evs_append_result_t res{};
        int rc = Checked(evs_append(s, stream.data(), stream.size(), ToC(exp), ce.data(), ce.size(),
                                    &res, &err),
                         &err);
        switch (want) {
          case Outcome::kInvalid: FUZZ_CHECK(rc == EVS_INVALID_ARGUMENT); break;
          case Outcome::kDuplicate: FUZZ_CHECK(rc == EVS_DUPLICATE_EVENT); break;
          case Outcome::kWrongVersion: {
            FUZZ_CHECK(rc == EVS_WRONG_EXPECTED_VERSION);
            auto it = m.streams.find(stream);
            int64_t actual = it == m.streams.end() ? EVS_NO_STREAM
                                                   : static_cast<int64_t>(it->second.size() - 1);
            FUZZ_CHECK(res.actual_version == actual);
            break;
          }
          case Outcome::kReplay:
            FUZZ_CHECK(rc == EVS_OK);
            FUZZ_CHECK(FromC(res) == replay);
            FUZZ_CHECK(res.actual_version == EVS_NO_STREAM);
            break;
          case Outcome::kAppend:
            FUZZ_CHECK(rc == EVS_OK);
            FUZZ_CHECK(FromC(res) == Apply(m, stream, events));
            break;
        }
        break;
      }
      case 2: {  // a transaction over two distinct streams
        uint8_t a = in.Byte() % 4, b = (a + 1 + in.Byte() % 3) % 4;
        std::string names[2] = {kStreams[a], kStreams[b]};
        ExpectedVersion exps[2] = {ExpectedVersion::Any(), ExpectedVersion::Any()};
        std::vector<EventData> events[2];
        evs_tx_t* tx = evs_tx_create();
        FUZZ_CHECK(tx != nullptr);
        for (int p = 0; p < 2; p++) {
          exps[p] = MakeExpected(in, m, names[p]);
          size_t n = 1 + in.Byte() % 2;
          for (size_t i = 0; i < n; i++) events[p].push_back(MakeEvent(in));
          std::vector<evs_event_t> ce = ToC(events[p]);
          char* e2 = nullptr;
          FUZZ_CHECK(Checked(evs_tx_add(tx, names[p].data(), names[p].size(), ToC(exps[p]),
                                        ce.data(), ce.size(), &e2),
                             &e2) == EVS_OK);
        }
        FUZZ_CHECK(evs_tx_size(tx) == 2);
        AppendResult r0, r1;
        Outcome o0 = Predict(m, names[0], exps[0], events[0], &r0);
        Outcome o1 = Predict(m, names[1], exps[1], events[1], &r1);
        bool cross = false;
        for (const auto& e0 : events[0])
          for (const auto& e1 : events[1])
            if (!e0.id.is_nil() && e0.id == e1.id) cross = true;
        evs_append_result_t res[2]{};
        size_t conflict = 0;
        int rc = Checked(evs_tx_commit(s, tx, res, 2, &conflict, &err), &err);
        evs_tx_destroy(tx);
        if (cross && rc != EVS_OK) {
          FUZZ_CHECK(rc != EVS_IO_ERROR && rc != EVS_CORRUPTION);
          break;
        }
        if (o0 == Outcome::kAppend && o1 == Outcome::kAppend && !cross) {
          FUZZ_CHECK(rc == EVS_OK);
          FUZZ_CHECK(FromC(res[0]) == Apply(m, names[0], events[0]));
          FUZZ_CHECK(FromC(res[1]) == Apply(m, names[1], events[1]));
        } else if (o0 == Outcome::kReplay && o1 == Outcome::kReplay) {
          FUZZ_CHECK(rc == EVS_OK);
          FUZZ_CHECK(FromC(res[0]) == r0 && FromC(res[1]) == r1);
        } else {
          FUZZ_CHECK(rc != EVS_OK);  // all or nothing
          FUZZ_CHECK(rc != EVS_IO_ERROR && rc != EVS_CORRUPTION);
        }
        if (rc == EVS_WRONG_EXPECTED_VERSION) {
          // The first stale part, with its stream's actual version.
          FUZZ_CHECK(conflict < 2);
          if (conflict >= 2) break;
          FUZZ_CHECK((conflict == 0 ? o0 : o1) == Outcome::kWrongVersion);
          FUZZ_CHECK(conflict == 0 || o0 != Outcome::kWrongVersion);
          auto it = m.streams.find(names[conflict]);
          int64_t actual = it == m.streams.end() ? EVS_NO_STREAM
                                                 : static_cast<int64_t>(it->second.size() - 1);
          FUZZ_CHECK(res[conflict].actual_version == actual);
          FUZZ_CHECK(res[1 - conflict].actual_version == EVS_NO_STREAM);
        } else {
          FUZZ_CHECK(conflict == EVS_NO_PART);
        }
        break;
      }
      case 3: {  // read_stream
        std::string stream = kStreams[in.Byte() % 4];
        uint8_t b = in.Byte();
        Direction dir = (b & 1) ? Direction::kBackward : Direction::kForward;
        uint64_t from = (b & 2) && dir == Direction::kBackward ? kEnd : (b >> 2) % 6;
        uint64_t limit = (b & 0x80) ? kNoLimit : in.Byte() % 4;
        evs_iter_t* it = nullptr;
        int rc = evs_read_stream(s, stream.data(), stream.size(), from,
                                 dir == Direction::kBackward ? EVS_BACKWARD : EVS_FORWARD, limit,
                                 &it, &err);
        auto ms = m.streams.find(stream);
        if (ms == m.streams.end()) {
          FUZZ_CHECK(Checked(rc, &err) == EVS_NOT_FOUND && it == nullptr);
          break;
        }
        CheckIter(m, rc, &err, it,
                  Select(ms->second, from, dir, limit, [&](uint64_t p) { return m.log[p].version; }));
        break;
      }
      case 4: {  // read_all
        uint8_t b = in.Byte();
        Direction dir = (b & 1) ? Direction::kBackward : Direction::kForward;
        uint64_t from = (b & 2) && dir == Direction::kBackward ? kEnd : (b >> 2) % 24;
        uint64_t limit = (b & 0x80) ? kNoLimit : in.Byte() % 6;
        std::vector<uint64_t> all(m.log.size());
        for (size_t i = 0; i < all.size(); i++) all[i] = i;
        evs_iter_t* it = nullptr;
        int rc = evs_read_all(s, from, dir == Direction::kBackward ? EVS_BACKWARD : EVS_FORWARD,
                              limit, &it, &err);
        CheckIter(m, rc, &err, it, Select(all, from, dir, limit, [](uint64_t p) { return p; }));
        break;
      }
      case 5: {  // read_category / read_type
        uint8_t b = in.Byte();
        bool by_type = b & 1;
        std::string name = by_type ? kTypes[(b >> 1) % 3] : ((b & 2) ? "order" : "cart");
        Direction dir = (b & 8) ? Direction::kBackward : Direction::kForward;
        uint64_t from = dir == Direction::kBackward ? kEnd : (b >> 4) % 16;
        std::vector<uint64_t> all;
        for (const auto& e : m.log)
          if (by_type ? e.type == name : CategoryOf(e.stream) == name) all.push_back(e.position);
        evs_iter_t* it = nullptr;
        int cdir = dir == Direction::kBackward ? EVS_BACKWARD : EVS_FORWARD;
        int rc = by_type ? evs_read_type(s, name.data(), name.size(), from, cdir, EVS_NO_LIMIT, &it, &err)
                         : evs_read_category(s, name.data(), name.size(), from, cdir, EVS_NO_LIMIT,
                                             &it, &err);
        CheckIter(m, rc, &err, it, Select(all, from, dir, kNoLimit, [](uint64_t p) { return p; }));
        break;
      }
      case 6: {  // read_event
        uint64_t p = in.Byte() % 32;
        evs_iter_t* it = nullptr;
        int rc = evs_read_event(s, p, &it, &err);
        if (p >= m.log.size()) {
          FUZZ_CHECK(Checked(rc, &err) == EVS_NOT_FOUND && it == nullptr);
        } else {
          CheckIter(m, rc, &err, it, {p});
        }
        break;
      }
      case 7: {  // stream_head and stats
        std::string stream = kStreams[in.Byte() % 4];
        uint64_t v = 0, p = 0;
        int rc = Checked(evs_stream_head(s, stream.data(), stream.size(), &v, &p, &err), &err);
        auto ms = m.streams.find(stream);
        if (ms == m.streams.end()) {
          FUZZ_CHECK(rc == EVS_NOT_FOUND);
        } else {
          FUZZ_CHECK(rc == EVS_OK && v == ms->second.size() - 1 && p == ms->second.back());
        }
        evs_store_stats_t st{};
        char* e2 = nullptr;
        FUZZ_CHECK(Checked(evs_store_stats(s, &st, &e2), &e2) == EVS_OK);
        FUZZ_CHECK(st.next_position == m.log.size());
        break;
      }
      case 8: {  // close, verify read-only, reopen
        if (reopens++ >= 2) break;
        close();
        VerifyReadOnly(path, m);
        open();
        break;
      }
    }
  }
  close();
  VerifyReadOnly(path, m);
  evs_options_destroy(opts);
  return 0;
}
