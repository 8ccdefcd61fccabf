// SSLContext: a TLS configuration shared by many connections — what Tornado builds from
// `ssl_options` with netutil.ssl_options_to_context (an ssl.SSLContext), on OpenSSL 3.
//
//   squall::SSLOptions tls;
//   tls.certfile = "server.pem";  // the certificate, then its chain
//   tls.keyfile = "server.key";
//   auto context = squall::SSLContext::server(tls);  // loads and checks the files now
//   squall::HTTPServer server(app, {}, {}, context);
//
// Building a context reads files (and, for a client that validates, the system trust
// store), so build it once and share it: it is immutable, and every stream using it keeps
// it alive (shared_ptr). Bad files, keys that do not match the certificate and unknown
// cipher names throw SSLError at once, not at the first connection.
//
// Server: certificate chain and key; TLS 1.2 minimum by default; cipher lists; client
// certificates not asked for, optional or required (verified against ca_certs); an SNI
// callback that picks another context (certificate) by the name the client asked for;
// ALPN selecting from alpn_protocols (http/1.1).
// Client: the server's chain is verified by default — against ca_certs, or the system
// store (Debian's ca-certificates) when ca_certs is empty — and its host name or IP
// address (SAN IP entries) is checked per connection (SSLIOStream); SNI is sent for host
// names (never for IP literals, RFC 6066); an optional client certificate; ALPN offers
// alpn_protocols. validate_cert = false accepts any certificate (for tests).
//
// Per-connection state (the SSL object, the handshake) lives in SSLIOStream.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/ioloop.h"

namespace squall {

// A TLS failure: a context that cannot be built (files, keys, ciphers) or a handshake or
// record error on a connection. what() says why in OpenSSL's words, e.g. "certificate
// verify failed: certificate has expired" or "wrong version number".
class SSLError : public std::runtime_error {
 public:
  explicit SSLError(const std::string& message, long verify_result = 0)
      : std::runtime_error(message), verify_result_(verify_result) {}
  // The X509_V_ERR_* code when certificate verification failed, else 0 (X509_V_OK).
  long verify_result() const { return verify_result_; }

 private:
  long verify_result_;
};

enum class TLSVersion { tls1_0, tls1_1, tls1_2, tls1_3 };

// Whether a server asks for a client certificate and whether it must get one.
enum class ClientCertMode { none, optional, required };

class SSLContext;

struct SSLOptions {
  // PEM: the certificate, then the intermediates of its chain. Required for a server;
  // for a client, the client certificate (optional).
  std::string certfile;
  std::string keyfile;  // PEM private key; "" = it is in certfile
  // PEM file of trusted CA certificates. Client: "" = the system store. Server: the CAs
  // client certificates must chain to (required unless client_cert is none).
  std::string ca_certs;
  TLSVersion min_version = TLSVersion::tls1_2;
  std::optional<TLSVersion> max_version;  // nullopt = the newest OpenSSL knows
  std::string ciphers;       // TLS 1.2 and older, OpenSSL cipher-list syntax; "" = OpenSSL's default
  std::string ciphersuites;  // TLS 1.3, OpenSSL syntax; "" = OpenSSL's default
  // Server: the protocols it accepts, in its order of preference (a client offering none
  // of them gets no ALPN answer rather than an alert). Client: the protocols offered.
  // Empty: no ALPN.
  std::vector<std::string> alpn_protocols = {"http/1.1"};
  // A handshake not finished this long after the stream was made fails the connection
  // (a client that connects and sends nothing). Zero: no limit.
  Duration handshake_timeout = std::chrono::seconds(30);

  // ---- server only
  ClientCertMode client_cert = ClientCertMode::none;
  // Called during the handshake with the server name the client sent (SNI); returns the
  // context whose certificate to present, or nullptr to keep this one. It runs inside
  // OpenSSL: it must not throw (an exception aborts the handshake) and should be quick.
  std::function<std::shared_ptr<const SSLContext>(const std::string& server_name)> sni_callback;

  // ---- client only
  bool validate_cert = true;   // verify the server's chain (and, with check_hostname, its name)
  bool check_hostname = true;  // with validate_cert: the name or IP must match the certificate
};

class SSLContext {
  struct Key {};  // make_shared needs a public constructor; this keeps it private

 public:
  // Throw SSLError when the context cannot be built (std::invalid_argument for options
  // that make no sense, e.g. a server without certfile).
  static std::shared_ptr<const SSLContext> server(SSLOptions options);
  static std::shared_ptr<const SSLContext> client(SSLOptions options = {});

  SSLContext(Key, SSLOptions options, bool server_side);
  ~SSLContext();
  SSLContext(const SSLContext&) = delete;
  SSLContext& operator=(const SSLContext&) = delete;

  bool server_side() const { return server_side_; }
  const SSLOptions& options() const { return options_; }
  // The OpenSSL context, for settings this class does not cover; SSL objects made from
  // it hold their own reference.
  SSL_CTX* native_handle() const { return ctx_.get(); }

 private:
  struct Free {
    void operator()(SSL_CTX* ctx) const;
  };

  void configure_common();
  void configure_server();
  void configure_client();
  static int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned int inlen, void* arg);
  static int select_server_name(SSL* ssl, int* alert, void* arg);

  SSLOptions options_;
  bool server_side_;
  std::unique_ptr<SSL_CTX, Free> ctx_;
  std::string alpn_wire_;  // alpn_protocols in the wire format (length-prefixed)
};

// The OpenSSL errors queued on this thread, oldest first, joined with "; " (and the
// queue cleared): "error:0A000086:SSL routines::certificate verify failed" reads worse
// than OpenSSL's reason strings, so only those are kept ("certificate verify failed").
std::string take_ssl_errors();

}  // namespace squall
