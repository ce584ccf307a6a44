// A program using evstore's C++ API the way an application does, built by
// the consumer projects next to this file (CMake: cmake/, Meson: meson/)
// against an installed evstore or a subproject. It opens a new store, appends
// two events, is refused a stale append, reads the stream back and closes.
// It also caches a stream head in a TieredCache, whose implementation the
// installed evstore/detail/ headers must supply (nothing is printed for it).
// Its output after the first line is expected.txt, the same as consumer.c's.
// usage: consumer_cpp DIR (DIR: a new directory)
#include <evstore/cache.hpp>
#include <evstore/store.hpp>
#include <evstore/version.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace {

int Fail(const char* what, const evstore::Status& s) {
  std::fprintf(stderr, "consumer_cpp: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

evstore::EventData Event(std::string type, std::string json) {
  evstore::EventData e;
  e.type = std::move(type);
  e.data = std::move(json);
  e.content_type = "application/json";
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  using evstore::ExpectedVersion;
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer_cpp DIR\n");
    return 2;
  }
  std::printf("evstore %s through the C++ API\n", EVSTORE_VERSION_STRING);

  auto opened = evstore::Store::open(argv[1]);
  if (!opened.ok()) return Fail("open", opened.status());
  evstore::Store store = std::move(opened).value();

  std::vector<evstore::EventData> events = {Event("OrderPlaced", R"({"sku":"tea"})"),
                                            Event("OrderPaid", R"({"amount":3})")};
  auto r = store.append("order-7", ExpectedVersion::NoStream(), events);
  if (!r.ok()) return Fail("append", r.status());
  std::printf("appended order-7 v%llu..v%llu at positions %llu..%llu\n",
              static_cast<unsigned long long>(r->first_version),
              static_cast<unsigned long long>(r->last_version),
              static_cast<unsigned long long>(r->first_position),
              static_cast<unsigned long long>(r->last_position));

  evstore::TieredCache<std::string, uint64_t> heads(evstore::CacheOptions::WithTotalCapacity(64),
                                                    evstore::TrivialCacheCodec<uint64_t>());
  if (!heads.put("order-7", r->last_version).ok() ||
      heads.get("order-7") != std::optional<uint64_t>(r->last_version)) {
    std::fprintf(stderr, "consumer_cpp: the cache lost a value\n");
    return 1;
  }

  auto stale = store.append("order-7", ExpectedVersion::NoStream(), Event("OrderCancelled", "{}"));
  if (!stale.status().IsWrongExpectedVersion()) return Fail("stale append", stale.status());
  std::printf("refused: order-7 is at version %lld\n",
              static_cast<long long>(stale.status().actual_version()));

  {  // the iterator must be gone before close()
    auto it = store.read_stream("order-7", 0);
    if (!it.ok()) return Fail("read", it.status());
    for (; it->Valid(); it->Next()) {
      const evstore::EventView& e = it->value();
      std::printf("#%llu %.*s v%llu %.*s %.*s\n", static_cast<unsigned long long>(e.position),
                  static_cast<int>(e.stream.size()), e.stream.data(),
                  static_cast<unsigned long long>(e.version), static_cast<int>(e.type.size()),
                  e.type.data(), static_cast<int>(e.data.size()), e.data.data());
    }
    if (!it->status().ok()) return Fail("read", it->status());
  }

  evstore::Status closed = store.close();
  if (!closed.ok()) return Fail("close", closed);
  std::printf("closed\n");
  return 0;
}
