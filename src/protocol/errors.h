#pragma once

#include <system_error>

namespace tickwire::protocol {

// Decoder outcomes that end a connection. Each maps to one ERROR code of the contract.
enum class DecodeError {
  kOk = 0,
  kZeroLength = 1,     // length field is 0: MALFORMED_FRAME
  kFrameTooLarge = 2,  // payload would exceed MAX_MSG_SIZE: FRAME_TOO_LARGE
};

const std::error_category& DecodeCategory();
std::error_code make_error_code(DecodeError e);

}  // namespace tickwire::protocol

template <>
struct std::is_error_code_enum<tickwire::protocol::DecodeError> : std::true_type {};
