#include "protocol/errors.h"

#include <string>

namespace tickwire::protocol {
namespace {

class DecodeCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tickwire.decode"; }
  std::string message(int ev) const override {
    switch (static_cast<DecodeError>(ev)) {
      case DecodeError::kOk:
        return "ok";
      case DecodeError::kZeroLength:
        return "frame length is zero";
      case DecodeError::kFrameTooLarge:
        return "frame exceeds MAX_MSG_SIZE";
    }
    return "unknown decode error";
  }
};

}  // namespace

const std::error_category& DecodeCategory() {
  static const DecodeCategoryImpl category;
  return category;
}

std::error_code make_error_code(DecodeError e) { return {static_cast<int>(e), DecodeCategory()}; }

}  // namespace tickwire::protocol
