#include "base/error.hpp"

namespace hvm {
void fail(const std::string& message) {
    throw UserError(message);
}
} // namespace hvm
