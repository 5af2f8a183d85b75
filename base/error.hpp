// Errors a user can cause (bad option, bad file) are one line and exit code 1: they are thrown as
// UserError and caught in main(). Internal invariants use assert().
#pragma once
#include <stdexcept>
#include <string>

namespace hvm {

class UserError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message); // throws UserError

} // namespace hvm
