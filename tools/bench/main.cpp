// evstore-bench <scenario> [flags]: runs evstore and its baselines in one
// process and reports throughputs and ratios (table + one JSON line).
#include <cstdio>
#include <cstring>

#include "bench.hpp"

namespace evbench {

std::vector<Scenario>& Scenarios() {
  static std::vector<Scenario> s;
  return s;
}

Registrar::Registrar(const char* name, const char* help, ScenarioFn fn) {
  Scenarios().push_back({name, help, fn});
}

std::string Flag(const std::vector<std::string>& args, const std::string& name,
                 const std::string& def) {
  std::string eq = "--" + name + "=";
  for (size_t i = 0; i < args.size(); i++) {
    if (args[i].rfind(eq, 0) == 0) return args[i].substr(eq.size());
    if (args[i] == "--" + name && i + 1 < args.size()) return args[i + 1];
  }
  return def;
}

bool HasFlag(const std::vector<std::string>& args, const std::string& name) {
  for (const auto& a : args)
    if (a == "--" + name || a.rfind("--" + name + "=", 0) == 0) return true;
  return false;
}

}  // namespace evbench

static void Usage(FILE* out) {
  std::fprintf(out, "usage: evstore-bench <scenario> [flags]\n\nscenarios:\n");
  for (const auto& s : evbench::Scenarios()) std::fprintf(out, "  %-8s %s\n", s.name, s.help);
}

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    Usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& s : evbench::Scenarios()) {
    if (std::strcmp(s.name, argv[1]) == 0) return s.run(args);
  }
  std::fprintf(stderr, "evstore-bench: unknown scenario '%s'\n", argv[1]);
  Usage(stderr);
  return 2;
}
