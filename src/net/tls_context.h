#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <variant>

#include "config/config.h"

namespace tickwire::net {

using TlsContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// Builds the stream port's TLS server context from TLS_CERT_PATH, TLS_KEY_PATH and (for mTLS)
// TLS_CLIENT_CA_PATH: TLS 1.2 and 1.3 only, Mozilla's "intermediate" cipher list for TLS 1.2
// (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305) in the server's order, and OpenSSL's TLS 1.3
// suites, no compression, no renegotiation. With a client CA, a client without a certificate it
// signed fails the handshake. Returns an error line naming the setting on failure; never throws.
std::variant<TlsContextPtr, std::string> MakeServerTlsContext(const config::Config& config);

// The current TLS context. Connections take the one current at accept and keep it (their SSL
// objects depend on it), so a reload (SIGHUP) affects new connections only and never drops
// established ones. Thread-safe.
class TlsContextStore {
 public:
  TlsContextPtr Get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void Set(TlsContextPtr next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  TlsContextPtr current_;
};

// The subject CN of the peer's verified certificate, or empty when there is none.
std::string PeerCommonName(SSL* ssl);

}  // namespace tickwire::net
