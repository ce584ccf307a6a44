#include <doctest/doctest.h>

#include "evstore/status.hpp"

using evstore::Result;
using evstore::Status;

TEST_SUITE("status") {
  TEST_CASE("an OK status has no message and code kOk") {
    Status s;
    CHECK(s.ok());
    CHECK(s.code() == Status::Code::kOk);
    CHECK(s.message().empty());
    CHECK(s.ToString() == "OK");
  }

  TEST_CASE("a wrong-expected-version status carries the actual version") {
    Status s = Status::WrongExpectedVersion("order-1 is at 4", 4);
    CHECK_FALSE(s.ok());
    CHECK(s.IsWrongExpectedVersion());
    CHECK(s.actual_version() == 4);
    CHECK(s.ToString() == "WrongExpectedVersion: order-1 is at 4");
    Status copy = s;
    CHECK(copy.actual_version() == 4);
    CHECK(copy.message() == s.message());
  }

  TEST_CASE("codes keep their stable numbers") {
    CHECK(static_cast<int>(Status::Code::kNotFound) == 1);
    CHECK(static_cast<int>(Status::Code::kCorruption) == 2);
    CHECK(static_cast<int>(Status::Code::kWrongExpectedVersion) == 6);
    CHECK(static_cast<int>(Status::Code::kClosed) == 11);
    CHECK(std::string(Status::CodeName(Status::Code::kDuplicateEvent)) == "DuplicateEvent");
  }

  TEST_CASE("a result holds a value or an error status") {
    Result<int> good = 7;
    REQUIRE(good.ok());
    CHECK(*good == 7);
    CHECK(good.status().ok());
    Result<int> bad = Status::NotFound("no such stream");
    CHECK_FALSE(bad.ok());
    CHECK(bad.status().IsNotFound());
  }
}
