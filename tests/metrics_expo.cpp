// Writes the Prometheus exposition of a real store to stdout, for
// metrics_exposition.py: a store in a temporary directory (argv[1], or one
// made here) with appends, a conflict, reads of every kind, a named
// subscription behind the log (its name needs escaping), a projection and a
// saga engine with one finished saga. Linked against the shared library.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "evstore/saga.hpp"
#include "evstore/store.hpp"

using namespace evstore;

namespace {
int Die(const char* what, const Status& s) {
  std::fprintf(stderr, "metrics_expo: %s: %s\n", what, s.ToString().c_str());
  return 2;
}
}  // namespace

int main() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "evstore-expo-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return 2;
  int rc = 0;
  {
    auto opened = Store::open(tmpl + "/store", Options::Fast());
    if (!opened.ok()) return Die("open", opened.status());
    Store store = std::move(opened).value();
    for (int i = 0; i < 10; i++) {
      EventData e;
      e.type = "Happened";
      e.data = "{\"i\":" + std::to_string(i) + "}";
      auto r = store.append("order-" + std::to_string(i % 3), ExpectedVersion::Any(), e);
      if (!r.ok()) return Die("append", r.status());
    }
    EventData e;
    e.type = "Late";
    (void)store.append("order-0", ExpectedVersion::NoStream(), e);  // a conflict
    (void)store.read_stream("order-1", 0);
    (void)store.read_all(0);
    (void)store.read_category("order", 0);
    (void)store.read_type("Happened", 0);
    (void)store.read_event(3);
    SubscribeOptions so;
    so.checkpoint = "audit \"eu\"\\west\n2";
    auto sub = store.subscribe(so);
    if (!sub.ok()) return Die("subscribe", sub.status());
    auto proj = store.run_projection("by-type", ProjectionOptions(),
                                     [](const RecordedEvent& ev, ProjectionState& st) {
                                       return st.put(ev.type, "1");
                                     });
    if (!proj.ok()) return Die("projection", proj.status());
    Status w = (*proj)->wait_for(10, std::chrono::seconds(30));
    if (!w.ok()) return Die("projection wait", w);
    SagaDefinition def;
    def.name = "ship";
    StepDefinition step;
    step.name = "pack";
    step.action = [](const StepContext&) { return StepResult::Success("packed"); };
    def.steps.push_back(step);
    auto engine = SagaEngine::open(store, std::vector{def});
    if (!engine.ok()) return Die("saga engine", engine.status());
    auto started = (*engine)->start("ship", "s-1", "{}");
    if (!started.ok()) return Die("saga start", started.status());
    auto done = (*engine)->wait("s-1", std::chrono::seconds(30));
    if (!done.ok()) return Die("saga wait", done.status());
    auto text = store.metrics_text();
    if (!text.ok()) return Die("metrics_text", text.status());
    std::fwrite(text->data(), 1, text->size(), stdout);
    (void)(*engine)->shutdown();
    (*proj)->stop();
    (void)(*proj)->wait();
    if (std::fflush(stdout) != 0) rc = 2;
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return rc;
}
