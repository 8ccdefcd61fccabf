// SSLContext (see squall/ssl_context.h).
#include "squall/ssl_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <utility>

#include "squall/log.h"

namespace squall {

namespace {

int protocol_version(TLSVersion version) {
  switch (version) {
    case TLSVersion::tls1_0:
      return TLS1_VERSION;
    case TLSVersion::tls1_1:
      return TLS1_1_VERSION;
    case TLSVersion::tls1_2:
      return TLS1_2_VERSION;
    case TLSVersion::tls1_3:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

// Throws SSLError "<what>: <OpenSSL's reasons>".
[[noreturn]] void fail(const std::string& what) {
  std::string reasons = take_ssl_errors();
  throw SSLError(reasons.empty() ? what : what + ": " + reasons);
}

}  // namespace

std::string take_ssl_errors() {
  std::string out;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : fmt::format("OpenSSL error {:#x}", code);
  }
  return out;
}

void SSLContext::Free::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }

std::shared_ptr<const SSLContext> SSLContext::server(SSLOptions options) {
  if (options.certfile.empty()) throw std::invalid_argument("SSLOptions: a server needs certfile");
  if (options.client_cert != ClientCertMode::none && options.ca_certs.empty()) {
    throw std::invalid_argument("SSLOptions: verifying client certificates needs ca_certs");
  }
  return std::make_shared<const SSLContext>(Key{}, std::move(options), /*server_side=*/true);
}

std::shared_ptr<const SSLContext> SSLContext::client(SSLOptions options) {
  return std::make_shared<const SSLContext>(Key{}, std::move(options), /*server_side=*/false);
}

SSLContext::SSLContext(Key, SSLOptions options, bool server_side)
    : options_(std::move(options)), server_side_(server_side) {
  ERR_clear_error();
  ctx_.reset(SSL_CTX_new(server_side ? TLS_server_method() : TLS_client_method()));
  if (!ctx_) fail("SSL_CTX_new failed");
  for (const std::string& protocol : options_.alpn_protocols) {
    if (protocol.empty() || protocol.size() > 255) throw std::invalid_argument("SSLOptions: bad ALPN protocol name");
    alpn_wire_ += static_cast<char>(protocol.size());
    alpn_wire_ += protocol;
  }
  configure_common();
  if (server_side) {
    configure_server();
  } else {
    configure_client();
  }
}

SSLContext::~SSLContext() = default;

void SSLContext::configure_common() {
  SSL_CTX* ctx = ctx_.get();
  if (SSL_CTX_set_min_proto_version(ctx, protocol_version(options_.min_version)) != 1) fail("bad min_version");
  if (options_.max_version && SSL_CTX_set_max_proto_version(ctx, protocol_version(*options_.max_version)) != 1) {
    fail("bad max_version");
  }
  // No compression (CRIME); no renegotiation (a TLS 1.2 peer could otherwise make a read
  // need a write mid-stream, and it is a known DoS lever); a peer that closes the TCP
  // connection without close_notify is an end of stream, as Python's suppress_ragged_eofs
  // (HTTP framing, not TLS, detects a truncated message).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Writes: a record at a time is success (the stream's write queue keeps the rest), and a
  // retried write may come from another buffer holding the same bytes (the stream
  // re-gathers its queue). Idle connections give back their 34 KiB of record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Read what the socket has in one recv rather than a record header and then its body:
  // half the system calls per request. The bytes read ahead wait inside OpenSSL, where
  // the loop cannot see them: SSLIOStream drains them before it waits for the socket.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!options_.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, options_.ciphers.c_str()) != 1) {
    fail("bad ciphers '" + options_.ciphers + "'");
  }
  if (!options_.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, options_.ciphersuites.c_str()) != 1) {
    fail("bad ciphersuites '" + options_.ciphersuites + "'");
  }
  if (!options_.certfile.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options_.certfile.c_str()) != 1) {
      fail("cannot load certificate chain '" + options_.certfile + "'");
    }
    const std::string& keyfile = options_.keyfile.empty() ? options_.certfile : options_.keyfile;
    if (SSL_CTX_use_PrivateKey_file(ctx, keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail("cannot load private key '" + keyfile + "'");
    }
    if (SSL_CTX_check_private_key(ctx) != 1) fail("the private key does not match the certificate");
  }
}

void SSLContext::configure_server() {
  SSL_CTX* ctx = ctx_.get();
  if (options_.client_cert != ClientCertMode::none) {
    if (SSL_CTX_load_verify_locations(ctx, options_.ca_certs.c_str(), nullptr) != 1) {
      fail("cannot load ca_certs '" + options_.ca_certs + "'");
    }
    // Tell clients which CAs we accept, so that one holding several certificates can pick.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.ca_certs.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (options_.client_cert == ClientCertMode::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  // Resumed sessions must be tied to this configuration (OpenSSL refuses to resume a
  // session that verified a client certificate without one).
  static constexpr unsigned char kSessionContext[] = "squall";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &SSLContext::select_alpn, this);
  if (options_.sni_callback) {
    SSL_CTX_set_tlsext_servername_callback(ctx, &SSLContext::select_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, this);
  }
}

void SSLContext::configure_client() {
  SSL_CTX* ctx = ctx_.get();
  if (options_.validate_cert) {
    int loaded = options_.ca_certs.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                           : SSL_CTX_load_verify_locations(ctx, options_.ca_certs.c_str(), nullptr);
    if (loaded != 1) fail("cannot load ca_certs '" + options_.ca_certs + "'");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!alpn_wire_.empty()) {
    // Unlike most of OpenSSL, 0 means success here.
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                                static_cast<unsigned int>(alpn_wire_.size())) != 0) {
      fail("cannot set ALPN protocols");
    }
  }
}

int SSLContext::select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                            unsigned int inlen, void* arg) {
  const auto* self = static_cast<const SSLContext*>(arg);
  unsigned char* selected = nullptr;
  // Our preference order wins; no common protocol means no ALPN answer (not an alert),
  // so that a client offering only h2 still gets HTTP/1.1 if it can speak it.
  if (SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                            static_cast<unsigned int>(self->alpn_wire_.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int SSLContext::select_server_name(SSL* ssl, int* alert, void* arg) {
  const auto* self = static_cast<const SSLContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  try {
    std::shared_ptr<const SSLContext> chosen = self->options_.sni_callback(name);
    if (chosen && chosen.get() != self) {
      // The certificate and key switch (verification settings stay this context's). The
      // chosen context's callbacks point at it, so the connection must keep it alive:
      // the SSL's app data is the stream's slot for it (see SSLIOStream).
      SSL_set_SSL_CTX(ssl, chosen->native_handle());
      if (auto* slot = static_cast<std::shared_ptr<const SSLContext>*>(SSL_get_app_data(ssl))) *slot = chosen;
    }
    return SSL_TLSEXT_ERR_OK;
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "SNI callback failed for '{}': {}", name,
        describe_current_exception());
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
}

}  // namespace squall
