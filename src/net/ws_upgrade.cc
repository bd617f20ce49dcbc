#include "net/ws_upgrade.h"

#include <openssl/evp.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace tickwire::net::ws {
namespace http = boost::beast::http;
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated list `value` holds `token` (without case).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (EqualsNoCase(Trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// A Sec-WebSocket-Key is 16 bytes in base64: 22 characters and "==".
bool ValidKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

UpgradeResult Reject(Rejection why, unsigned status, std::string_view reason, std::string detail,
                     std::string_view extra_headers = {}) {
  UpgradeResult r;
  r.status = UpgradeResult::Status::kRejected;
  r.rejection = why;
  r.response = ErrorResponse(status, reason, detail + "\n", extra_headers);
  r.detail = std::move(detail);
  return r;
}

}  // namespace

std::string_view RejectionName(Rejection r) {
  switch (r) {
    case Rejection::kNone:
      return "none";
    case Rejection::kMalformed:
      return "malformed";
    case Rejection::kTooLarge:
      return "too_large";
    case Rejection::kNotFound:
      return "not_found";
    case Rejection::kNotUpgrade:
      return "not_upgrade";
    case Rejection::kVersion:
      return "version";
    case Rejection::kOrigin:
      return "origin";
    case Rejection::kTimeout:
      return "timeout";
    case Rejection::kCount:
      break;
  }
  return "unknown";
}

std::string AcceptKey(std::string_view key) {
  std::string input(key);
  input.append(kGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr);
  std::array<unsigned char, 64> out{};
  const int n = EVP_EncodeBlock(out.data(), digest.data(), static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

std::string ErrorResponse(unsigned status, std::string_view reason, std::string_view body,
                          std::string_view extra_headers) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " ";
  r.append(reason);
  r.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  r.append(std::to_string(body.size()));
  r.append("\r\nConnection: close\r\n");
  r.append(extra_headers);
  r.append("\r\n");
  r.append(body);
  return r;
}

UpgradeParser::UpgradeParser(const UpgradeSettings& settings) : settings_(settings) {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(kMaxRequestBytes));
  parser_->body_limit(0);
}

UpgradeResult UpgradeParser::Feed(std::span<const std::uint8_t> data) {
  // Never more than the limit (plus one byte, to tell "exactly full" from "over") is kept.
  const std::size_t room = kMaxRequestBytes + 1 - std::min(buffer_.size(), kMaxRequestBytes + 1);
  buffer_.append(reinterpret_cast<const char*>(data.data()), std::min(room, data.size()));
  const std::size_t over = data.size() > room ? data.size() - room : 0;
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = parser_->put(
        boost::asio::buffer(buffer_.data() + consumed_, buffer_.size() - consumed_), ec);
    consumed_ += n;
    if (ec == http::error::need_more) {
      if (buffer_.size() > kMaxRequestBytes || over > 0) {
        return Reject(Rejection::kTooLarge, 431, "Request Header Fields Too Large",
                      "request head over " + std::to_string(kMaxRequestBytes) + " bytes");
      }
      return {};
    }
    if (ec == http::error::header_limit) {
      return Reject(Rejection::kTooLarge, 431, "Request Header Fields Too Large",
                    "request head over " + std::to_string(kMaxRequestBytes) + " bytes");
    }
    if (ec)
      return Reject(Rejection::kMalformed, 400, "Bad Request", "bad request: " + ec.message());
    if (parser_->is_done()) break;
    if (parser_->is_header_done()) {
      // A body (Content-Length or chunked) has no place in an upgrade request.
      return Reject(Rejection::kMalformed, 400, "Bad Request", "upgrade request with a body");
    }
    if (n == 0) return {};
  }
  UpgradeResult r = Decide();
  if (r.status == UpgradeResult::Status::kAccepted) {
    r.leftover = buffer_.substr(consumed_);
    // Bytes past the limit that were not kept belong to the frames after the head too.
    if (over > 0) {
      r.leftover.append(reinterpret_cast<const char*>(data.data()) + (data.size() - over), over);
    }
  }
  buffer_.clear();
  buffer_.shrink_to_fit();
  return r;
}

UpgradeResult UpgradeParser::Decide() {
  const auto& req = parser_->get();
  if (req.version() < 11) {
    return Reject(Rejection::kMalformed, 400, "Bad Request", "HTTP/1.1 or later required");
  }
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != settings_.path) {
    return Reject(Rejection::kNotFound, 404, "Not Found", "no WebSocket endpoint at this path");
  }
  constexpr std::string_view kUpgradeHeaders =
      "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  if (req.method() != http::verb::get) {
    return Reject(Rejection::kNotUpgrade, 400, "Bad Request", "a WebSocket upgrade is a GET");
  }
  if (!HasToken(req[http::field::upgrade], "websocket") ||
      !HasToken(req[http::field::connection], "upgrade")) {
    return Reject(Rejection::kNotUpgrade, 426, "Upgrade Required",
                  "this endpoint speaks WebSocket only", kUpgradeHeaders);
  }
  if (req[http::field::host].empty()) {
    return Reject(Rejection::kMalformed, 400, "Bad Request", "no Host header");
  }
  if (Trim(req[http::field::sec_websocket_version]) != "13") {
    return Reject(Rejection::kVersion, 426, "Upgrade Required", "Sec-WebSocket-Version 13 required",
                  kUpgradeHeaders);
  }
  const std::string_view key = Trim(req[http::field::sec_websocket_key]);
  if (!ValidKey(key)) {
    return Reject(Rejection::kNotUpgrade, 400, "Bad Request", "missing or bad Sec-WebSocket-Key");
  }
  if (!settings_.allowed_origins.empty()) {
    const auto it = req.find(http::field::origin);
    if (it != req.end()) {
      const std::string_view origin = Trim(it->value());
      const bool allowed =
          std::any_of(settings_.allowed_origins.begin(), settings_.allowed_origins.end(),
                      [&](const std::string& o) { return EqualsNoCase(o, origin); });
      if (!allowed) {
        return Reject(Rejection::kOrigin, 403, "Forbidden", "origin not in WS_ALLOWED_ORIGINS");
      }
    }
  }
  UpgradeResult r;
  r.status = UpgradeResult::Status::kAccepted;
  r.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  r.response.append(AcceptKey(key));
  r.response.append("\r\n");
  if (HasToken(req[http::field::sec_websocket_protocol], kSubprotocol)) {
    r.response.append("Sec-WebSocket-Protocol: ");
    r.response.append(kSubprotocol);
    r.response.append("\r\n");
  }
  r.response.append("\r\n");
  return r;
}

}  // namespace tickwire::net::ws
