#include "support/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "support/wait.h"

namespace tickwire::testing {
namespace {

std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(out.empty() ? "" : "; ") + buf;
  }
  return out.empty() ? "no OpenSSL error" : out;
}

}  // namespace

TestPki::TestPki() {
  if (!MakeCa("ca") || !MakeCa("rogue-ca") || !MakeServerCert("server", "tickwire-server") ||
      !MakeClientCert("client", "viewer") ||
      !MakeLeaf("rogue-ca", "rogue-client", "viewer", "extendedKeyUsage=clientAuth")) {
    if (error_.empty()) error_ = "openssl failed";
    error_ += "\n" + Log();
  }
}

int TestPki::Run(const std::string& command) const {
  const std::string full = "cd '" + dir_.path() + "' && (" + command + ") >>openssl.log 2>&1";
  const int status = std::system(full.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string TestPki::Log() const { return ReadFileOrEmpty(dir_.File("openssl.log")); }

bool TestPki::MakeCa(const std::string& name) {
  if (Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
          "-keyout " +
          name + ".key -out " + name + ".crt -subj /CN=tickwire-test-" + name +
          " -addext basicConstraints=critical,CA:TRUE "
          "-addext keyUsage=critical,keyCertSign,cRLSign") != 0) {
    error_ = "making CA " + name;
    return false;
  }
  return true;
}

bool TestPki::MakeLeaf(const std::string& ca, const std::string& name, const std::string& cn,
                       const std::string& extensions) {
  {
    std::ofstream ext(dir_.File(name + ".ext"));
    ext << "basicConstraints=CA:FALSE\n" << extensions << "\n";
  }
  static std::mt19937_64 rng{std::random_device{}()};
  const std::string serial = std::to_string(rng() >> 2);
  if (Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name +
          ".key.tmp -out " + name + ".csr -subj /CN=" + cn + " && openssl x509 -req -in " + name +
          ".csr -CA " + ca + ".crt -CAkey " + ca + ".key -set_serial " + serial +
          " -days 2 -extfile " + name + ".ext -out " + name + ".crt.tmp && mv " + name +
          ".key.tmp " + name + ".key && mv " + name + ".crt.tmp " + name + ".crt") != 0) {
    error_ = "making certificate " + name;
    return false;
  }
  return true;
}

bool TestPki::MakeServerCert(const std::string& name, const std::string& cn) {
  return MakeLeaf("ca", name, cn, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth");
}

bool TestPki::MakeClientCert(const std::string& name, const std::string& cn) {
  return MakeLeaf("ca", name, cn, "extendedKeyUsage=clientAuth");
}

TlsClient::~TlsClient() { Close(); }

void TlsClient::Close() {
  if (ssl_ != nullptr) {
    // A clean close (close_notify, best effort): OpenSSL marks the session of a connection
    // freed without one as not resumable.
    if (SSL_is_init_finished(ssl_) == 1) SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
  ssl_ = nullptr;
  ctx_ = nullptr;
  fd_ = -1;
  buffer_.clear();
  eof_ = false;
}

bool TlsClient::Connect(std::uint16_t port, const TlsOptions& o) {
  Close();
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (o.min_version != 0 || o.max_version != 0) {
    // Old protocol versions need the lowest security level to be offered at all.
    SSL_CTX_set_security_level(ctx_, 0);
  }
  if (o.min_version != 0) SSL_CTX_set_min_proto_version(ctx_, o.min_version);
  if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx_, o.max_version);
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx_, o.ciphers.c_str()) != 1) {
    last_error_ = "cipher list: " + OpenSslErrors();
    return false;
  }
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr) != 1) {
      last_error_ = "CA file: " + OpenSslErrors();
      return false;
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (o.no_tickets) SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
  if (!o.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx_, o.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    last_error_ = "client certificate: " + OpenSslErrors();
    return false;
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    last_error_ = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  if (!o.before_tls.empty() && send(fd_, o.before_tls.data(), o.before_tls.size(), MSG_NOSIGNAL) !=
                                   static_cast<ssize_t>(o.before_tls.size())) {
    last_error_ = "sending the bytes before TLS failed";
    return false;
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  if (o.resume && SSL_set_session(ssl_, o.resume.get()) != 1) {
    last_error_ = "resume: " + OpenSslErrors();
    return false;
  }
  if (!o.ca_file.empty()) SSL_set1_host(ssl_, "127.0.0.1");
  if (SSL_connect(ssl_) != 1) {
    last_error_ = "handshake: " + OpenSslErrors();
    return false;
  }
  // From here on non-blocking, with poll() enforcing each read's deadline.
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  return true;
}

std::string TlsClient::PeerCommonName() const {
  if (ssl_ == nullptr) return {};
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  X509_free(cert);
  return cn;
}

std::shared_ptr<SSL_SESSION> TlsClient::Session() const {
  if (ssl_ == nullptr) return nullptr;
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (s == nullptr) return nullptr;
  if (SSL_SESSION_is_resumable(s) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return std::shared_ptr<SSL_SESSION>(s, SSL_SESSION_free);
}

bool TlsClient::Resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

std::string TlsClient::Version() const { return ssl_ == nullptr ? "" : SSL_get_version(ssl_); }

bool TlsClient::SendFrame(protocol::FrameType type, const google::protobuf::MessageLite& m) {
  if (ssl_ == nullptr) return false;
  const std::string payload = m.SerializeAsString();
  std::string frame(protocol::kHeaderSize, '\0');
  const auto length = static_cast<std::uint32_t>(payload.size() + 1);
  frame[0] = static_cast<char>(length >> 24);
  frame[1] = static_cast<char>(length >> 16);
  frame[2] = static_cast<char>(length >> 8);
  frame[3] = static_cast<char>(length);
  frame[4] = static_cast<char>(type);
  frame += payload;
  std::size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (sent < frame.size()) {
    const int n = SSL_write(ssl_, frame.data() + sent, static_cast<int>(frame.size() - sent));
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if ((err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) ||
        std::chrono::steady_clock::now() > deadline) {
      last_error_ = "SSL_write failed";
      return false;
    }
    pollfd pfd{fd_, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
    poll(&pfd, 1, 100);
  }
  return true;
}

ReadResult TlsClient::ReadFrame(std::chrono::milliseconds timeout) {
  ReadResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (buffer_.size() >= protocol::kHeaderSize) {
      const std::uint32_t length =
          protocol::DecodeLength(reinterpret_cast<const std::uint8_t*>(buffer_.data()));
      if (length == 0 || length > (64u << 20)) {
        result.status = ReadStatus::kError;
        result.detail = "bad frame length";
        return result;
      }
      const std::size_t total = protocol::kLengthSize + length;
      if (buffer_.size() >= total) {
        result.status = ReadStatus::kFrame;
        result.frame.type = static_cast<std::uint8_t>(buffer_[protocol::kLengthSize]);
        result.frame.payload = buffer_.substr(protocol::kHeaderSize, total - protocol::kHeaderSize);
        buffer_.erase(0, total);
        return result;
      }
    }
    if (eof_ || ssl_ == nullptr) {
      result.status = buffer_.empty() ? ReadStatus::kClosed : ReadStatus::kError;
      return result;
    }
    char chunk[16384];
    const int n = SSL_read(ssl_, chunk, sizeof(chunk));
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      const int wait_ms = static_cast<int>(Remaining(deadline).count());
      if (wait_ms <= 0) {
        result.status = ReadStatus::kTimeout;
        return result;
      }
      pollfd pfd{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      poll(&pfd, 1, wait_ms);
      continue;
    }
    // Clean close, a reset, or an alert (e.g. the server refusing a certificate): all end it.
    eof_ = true;
    ERR_clear_error();
  }
}

::testing::AssertionResult TlsClient::Authenticate(const std::string& user,
                                                   const std::string& pass) {
  tickwire::v1::Auth auth;
  auth.set_username(user);
  auth.set_password(pass);
  auth.set_protocol_version(1);
  if (!SendFrame(protocol::FrameType::kAuth, auth)) {
    return ::testing::AssertionFailure() << "sending AUTH: " << last_error_;
  }
  const ReadResult r = ReadFrame();
  if (!r.ok()) return ::testing::AssertionFailure() << "AUTH: read " << ReadStatusName(r.status);
  if (r.frame.frame_type() != protocol::FrameType::kAuthOk) {
    return ::testing::AssertionFailure() << "AUTH answered with " << DescribeFrame(r.frame);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TlsClient::HeartbeatRoundTrip(std::int64_t ts_ms) {
  tickwire::v1::Heartbeat hb;
  hb.set_ts_ms(ts_ms);
  if (!SendFrame(protocol::FrameType::kHeartbeat, hb)) {
    return ::testing::AssertionFailure() << "sending HEARTBEAT: " << last_error_;
  }
  const ReadResult r = ReadFrame();
  tickwire::v1::Heartbeat echo;
  if (!r.ok() || r.frame.frame_type() != protocol::FrameType::kHeartbeat ||
      !echo.ParseFromString(r.frame.payload) || echo.ts_ms() != ts_ms) {
    return ::testing::AssertionFailure() << "no HEARTBEAT echo: " << ReadStatusName(r.status)
                                         << (r.ok() ? " " + DescribeFrame(r.frame) : std::string());
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tickwire::testing
