#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "support/raw_client.h"
#include "support/temp_dir.h"

namespace tickwire::testing {

// A throw-away PKI for TLS tests, made with the openssl command line in a private temp dir at
// test time (EC P-256 keys, valid two days): a CA, a server certificate for 127.0.0.1, a client
// certificate (CN "viewer") from the same CA, and a second, untrusted CA with its own client
// certificate (CN "viewer" too).
class TestPki {
 public:
  TestPki();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // A further server certificate from the CA, with subject CN `cn`: files <name>.crt/.key.
  bool MakeServerCert(const std::string& name, const std::string& cn);
  // A further client certificate from the CA: files <name>.crt/.key.
  bool MakeClientCert(const std::string& name, const std::string& cn);
  std::string Cert(const std::string& name) const { return dir_.File(name + ".crt"); }
  std::string Key(const std::string& name) const { return dir_.File(name + ".key"); }
  const TempDir& dir() const { return dir_; }

  // Runs a shell command with its output in the temp dir's log; returns its exit status.
  int Run(const std::string& command) const;
  // The openssl command log (for failure messages).
  std::string Log() const;

 private:
  bool MakeCa(const std::string& name);
  bool MakeLeaf(const std::string& ca, const std::string& name, const std::string& cn,
                const std::string& extensions);

  TempDir dir_;
  std::string error_;
};

struct TlsOptions {
  std::string ca_file;    // verify the server against this CA (empty: no verification)
  std::string cert_file;  // client certificate (mTLS)
  std::string key_file;
  int min_version = 0;  // e.g. TLS1_2_VERSION; 0 = library default
  int max_version = 0;
  std::string ciphers;     // TLS 1.2 cipher list; empty = default
  std::string before_tls;  // bytes sent in clear before the handshake (a PROXY header)
  // Resume this session (from TlsClient::Session of an earlier connection).
  std::shared_ptr<SSL_SESSION> resume;
  bool no_tickets = false;  // TLS 1.2: resume by session id (the server's cache), not a ticket
};

// A blocking TLS client speaking raw frames, with a deadline on every operation.
class TlsClient {
 public:
  TlsClient() = default;
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // TCP connect to 127.0.0.1:port and TLS handshake. False (see last_error()) on failure.
  bool Connect(std::uint16_t port, const TlsOptions& options);
  void Close();
  // Subject CN of the server's certificate.
  std::string PeerCommonName() const;
  // The session, for resuming it on a later connection (TLS 1.3 tickets arrive after the
  // handshake: read something first). Null when there is none.
  std::shared_ptr<SSL_SESSION> Session() const;
  // Whether the handshake resumed TlsOptions::resume.
  bool Resumed() const;
  std::string Version() const;

  bool SendFrame(protocol::FrameType type, const google::protobuf::MessageLite& message);
  ReadResult ReadFrame(std::chrono::milliseconds timeout = RawClient::kDefaultTimeout);
  // AUTH and wait for AUTH_OK.
  ::testing::AssertionResult Authenticate(const std::string& user, const std::string& pass);
  ::testing::AssertionResult HeartbeatRoundTrip(std::int64_t ts_ms);

  const std::string& last_error() const { return last_error_; }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
  bool eof_ = false;
  std::string last_error_;
};

}  // namespace tickwire::testing
