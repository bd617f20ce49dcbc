#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace tickwire::net {
namespace {

namespace ssl = boost::asio::ssl;

// Mozilla Server Side TLS, "intermediate" configuration (version 5.7), TLS 1.2 part. TLS 1.3
// suites are OpenSSL's defaults, which match the same profile. Order: ECDSA before RSA,
// AES-GCM before ChaCha20 (both are used only with a certificate of that key type).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:prime256v1:secp384r1";
// Names the sessions this server's contexts make. OpenSSL refuses to resume a session on a
// context that verifies client certificates unless one is set ("session id context
// uninitialized": the handshake fails), because a session could otherwise cross from a context
// with other verification settings. Each context (a reload makes a new one) has its own session
// cache and ticket keys, so sessions never cross between them anyway.
constexpr unsigned char kSessionIdContext[] = "tickwire-stream";

std::string OpenSslError(const boost::system::error_code& ec) {
  std::string out = ec.message();
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(" (") + buf + ")";
  }
  ERR_clear_error();
  return out;
}

}  // namespace

std::variant<TlsContextPtr, std::string> MakeServerTlsContext(const config::Config& c) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                   ec);
  // Every suite on the list is strong, so the server's order (strongest first as listed) wins:
  // a client cannot steer the choice, and scanners want a configured order.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(native, kGroups) != 1 || SSL_CTX_set_dh_auto(native, 1) != 1 ||
      SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof(kSessionIdContext) - 1) !=
          1) {
    ERR_clear_error();
    return std::string("TLS: cannot apply the protocol and cipher settings");
  }
  ctx->use_certificate_chain_file(c.tls_cert_path, ec);
  if (ec) return "TLS_CERT_PATH: cannot load '" + c.tls_cert_path + "': " + OpenSslError(ec);
  ctx->use_private_key_file(c.tls_key_path, ssl::context::pem, ec);
  if (ec) return "TLS_KEY_PATH: cannot load '" + c.tls_key_path + "': " + OpenSslError(ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return "TLS_KEY_PATH: '" + c.tls_key_path + "' does not match the certificate in '" +
           c.tls_cert_path + "'";
  }
  if (!c.tls_client_ca_path.empty()) {
    ctx->load_verify_file(c.tls_client_ca_path, ec);
    if (ec) {
      return "TLS_CLIENT_CA_PATH: cannot load '" + c.tls_client_ca_path + "': " + OpenSslError(ec);
    }
    // Tell clients which CAs are accepted (so they pick the right certificate).
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.tls_client_ca_path.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return "TLS_CLIENT_CA_PATH: " + OpenSslError(ec);
  } else {
    ctx->set_verify_mode(ssl::verify_none, ec);
  }
  ERR_clear_error();
  return ctx;
}

std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::string out;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* name = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
      unsigned char* utf8 = nullptr;
      const int len = ASN1_STRING_to_UTF8(&utf8, data);
      if (len > 0) out.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
    }
  }
  X509_free(cert);
  return out;
}

}  // namespace tickwire::net
