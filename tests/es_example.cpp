// The C++ examples of docs/event-sourcing.md, as one program: the code
// blocks of the guide are copies of parts of this file (the test
// es-example-doc checks it), and the test es-example runs it. Exits 0 when
// everything the guide says holds.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"
#include "evstore/upcast.hpp"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "es_example: %s\n", what);
    failures++;
  }
}

int Run(evstore::Store& store) {
  // [aggregate]
  struct Account {
    int64_t balance = 0;
  };

  evstore::AggregateType<Account> type;
  type.evolve = [](Account a, const evstore::EventView& e) {
    // Deposited v2 is "<amount>;<currency>"; std::stoll stops at the ';'.
    if (e.type == "Deposited") a.balance += std::stoll(std::string(e.data));
    if (e.type == "Withdrawn") a.balance -= std::stoll(std::string(e.data));
    return a;
  };
  type.codec.encode = [](const Account& a) { return std::to_string(a.balance); };
  type.codec.decode = [](std::string_view b) -> evstore::Result<Account> {
    return Account{std::stoll(std::string(b))};
  };
  evstore::AggregateOptions o;
  o.name = "account";              // snapshots are stored under it
  o.snapshots.every_events = 100;  // snapshot a stream every 100 events folded
  // [aggregate]

  // [upcasters]
  auto up = std::make_shared<evstore::Upcasters>();
  evstore::Status added = up->add("Deposited", 1, 2, [](evstore::UpcastEvent& e) {
    e.data += ";EUR";  // v2 added the currency; v1 amounts were in euros
    return evstore::Status::OK();
  });
  o.upcasters = up;  // AggregateOptions; ProjectionOptions has the same field
  // [upcasters]
  Check(added.ok(), "the upcaster is registered");

  // [open]
  auto accounts = evstore::Aggregate<Account>::open(store, o, type);
  if (!accounts.ok()) return 1;
  auto loaded = accounts->load("account-42");
  // loaded->state: shared, immutable; loaded->version: of its newest event
  // (-1: no events yet); loaded->expected(): the expectation to append with.
  // [open]
  Check(loaded.ok() && loaded->version == -1 && loaded->state->balance == 0, "an empty account");

  // A v1 deposit, stored before the currency existed.
  evstore::EventData old;
  old.type = "Deposited";
  old.data = "50";
  Check(store.append("account-42", evstore::ExpectedVersion::NoStream(), old).ok(), "a v1 deposit");

  // [commands]
  evstore::Decide<Account> withdraw = [](const Account& a, const evstore::Command& c) {
    int64_t amount = std::stoll(c.payload);
    if (a.balance < amount)
      return evstore::Decision::Reject("insufficient_funds", "balance " + std::to_string(a.balance));
    evstore::EventData e;
    e.type = "Withdrawn";
    e.data = c.payload;
    return evstore::Decision::Accept({e});
  };

  evstore::Command cmd;
  cmd.type = "Withdraw";
  cmd.stream = "account-42";
  cmd.payload = "30";
  cmd.id = "withdrawal-7f3a";  // optional: handled at most once
  auto r = evstore::HandleCommand(*accounts, cmd, withdraw);
  // r->accepted(), r->error (the domain error), r->append (positions),
  // r->tries, r->from_log
  // [commands]
  Check(r.ok() && r->accepted() && r->events == 1 && r->tries == 1, "the withdrawal is accepted");

  // [bus]
  auto bus = evstore::CommandBus::Create(store);
  evstore::Status registered = (*bus)->register_handler<Account>("Withdraw", *accounts, withdraw);
  auto again = (*bus)->handle(cmd);  // the same id: answered from the log
  // [bus]
  Check(registered.ok(), "the handler is registered");
  Check(again.ok() && again->from_log && again->append == r->append, "the repeat comes from the log");
  cmd.id = "withdrawal-80c1";
  auto refused = (*bus)->handle(cmd);
  Check(refused.ok() && !refused->accepted() && refused->error->code == "insufficient_funds",
        "a withdrawal beyond the balance is refused");
  auto now = accounts->load("account-42");
  Check(now.ok() && now->state->balance == 20 && now->version == 1, "the balance is 20");

  // The events a command appends carry its provenance.
  auto it = store.read_stream("account-42", 1);
  Check(it.ok() && it->Valid() && it->value().causation_id == "withdrawal-7f3a" &&
            it->value().correlation_id == "withdrawal-7f3a",
        "the withdrawal's correlation and causation");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "";
  std::string made;
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "evstore-es-example-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 2;
    dir = made = tmpl;
  }
  int rc;
  {
    auto store = evstore::Store::open(dir + "/store");
    if (!store.ok()) {
      std::fprintf(stderr, "es_example: open: %s\n", store.status().ToString().c_str());
      return 2;
    }
    rc = Run(*store);
  }
  if (!made.empty()) std::filesystem::remove_all(made);
  if (rc != 0 || failures != 0) return 1;
  std::printf("es_example: ok\n");
  return 0;
}
