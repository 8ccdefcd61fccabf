// squall-fetch: the client adapter of the contracts (conformance/CONTRACTS.md §4), and a
// small curl-like tool.
//
//   squall-fetch [fetch] URL [--method M] [--header 'K: V']... [--body-file F]
//                [--connect-timeout S] [--request-timeout S] [--max-redirects N | --no-follow]
//                [--decompress | --no-decompress] [--max-body-size B]
//                [--ca-certs PEM] [--client-cert PEM [--client-key PEM]] [--insecure]
//                [--body-only] [--json]
//
// https URLs are validated against the system store (ca-certificates) or --ca-certs,
// host name or IP included; --insecure (-k) accepts any certificate. A certificate
// that does not validate is a transport error: code 599 with the reason.
//
// By default (the contract) one JSON object is printed on one line:
//   {"code": 200, "reason": "OK", "headers": [["Name", "value"], ...], "body_b64": "...",
//    "effective_url": "http://...", "error": null}
// and the exit status is 0 (timeouts and connection errors are code 599 with "error" set).
// --json is accepted and ignored (JSON is the default; older command lines pass it).
// With --body-only (for people) the body goes to stdout like curl without -f: exit 0
// whenever a response was received (whatever its status), 1 on a transport error (the
// message on stderr).
// Non-standard method/body combinations are allowed (the adapter sends what it is told);
// POST, PUT and PATCH without --body-file send an empty body.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "squall/http_parse.h"
#include "squall/httpclient.h"
#include "squall/httputil.h"
#include "squall/ioloop.h"
#include "squall/log.h"
#include "squall/web.h"

namespace {

squall::Duration seconds(double s) {
  return std::chrono::duration_cast<squall::Duration>(std::chrono::duration<double>(s));
}

std::string to_json(const squall::HTTPResponse& r, const std::string& url, const std::string* error) {
  using squall::json_quote;
  std::string out = "{\"code\": " + std::to_string(r.code) + ", \"reason\": " + json_quote(r.reason) +
                    ", \"headers\": [";
  bool first = true;
  for (squall::HeaderField f : r.headers) {
    if (!first) out += ", ";
    first = false;
    out += "[" + json_quote(f.name) + ", " + json_quote(f.value) + "]";
  }
  out += "], \"body_b64\": " + json_quote(squall::base64_encode(r.body));
  out += ", \"effective_url\": " + json_quote(r.effective_url.empty() ? url : r.effective_url);
  out += ", \"error\": " + (error ? json_quote(*error) : std::string("null")) + "}";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // The contract starts the adapter as `<cmd> fetch URL ...`: accept the verb.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants them reversed
  if (!args.empty() && args.back() == "fetch") args.pop_back();

  CLI::App app{"Fetch a URL with Squall's AsyncHTTPClient", "squall-fetch"};
  std::string url;
  std::string method;
  std::vector<std::string> headers;
  std::string body_file;
  double connect_timeout = 20;
  double request_timeout = 20;
  std::optional<int> max_redirects;
  bool no_follow = false;
  bool decompress = true;
  std::optional<size_t> max_body_size;
  bool body_only = false;
  bool json_flag = false;  // accepted for compatibility: JSON is the default
  std::string ca_certs, client_cert, client_key;
  bool insecure = false;
  app.add_option("url", url, "http:// or https:// URL to fetch")->required();
  app.add_option("--method,-X", method, "request method (default GET, or POST with --body-file)");
  app.add_option("--header,-H", headers, "request header 'Name: value' (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--body-file", body_file, "file whose bytes are the request body")->check(CLI::ExistingFile);
  app.add_option("--connect-timeout", connect_timeout, "seconds")->check(CLI::PositiveNumber);
  app.add_option("--request-timeout", request_timeout, "seconds (the whole fetch)")->check(CLI::PositiveNumber);
  auto* redirects = app.add_option("--max-redirects", max_redirects, "redirects to follow (default 5)");
  auto* nofollow = app.add_flag("--no-follow", no_follow, "do not follow redirects");
  redirects->excludes(nofollow);
  app.add_flag("--decompress,!--no-decompress", decompress, "ask for and decode gzip (default on)");
  app.add_option("--max-body-size", max_body_size, "largest response body accepted, bytes");
  app.add_flag("--body-only", body_only,
               "print the response body instead of the contract's JSON object (exit 1 on a transport error)");
  app.add_flag("--json", json_flag, "accepted and ignored: the contract's JSON object is the default output")
      ->excludes("--body-only");
  app.add_option("--ca-certs", ca_certs, "PEM file of CAs to trust for https (default: the system store)")
      ->check(CLI::ExistingFile);
  auto* cert_option = app.add_option("--client-cert", client_cert, "PEM client certificate for https")
                          ->check(CLI::ExistingFile);
  app.add_option("--client-key", client_key, "PEM key of --client-cert (default: in that file)")
      ->check(CLI::ExistingFile)
      ->needs(cert_option);
  app.add_flag("--insecure,-k", insecure, "https: accept any certificate (no validation)");
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  squall::set_log_level(squall::LogLevel::error);

  squall::HTTPRequest request(url);
  request.raise_error = false;
  request.allow_nonstandard_methods = true;
  if (!body_file.empty()) {
    std::ifstream in(body_file, std::ios::binary);
    request.body = std::string(std::istreambuf_iterator<char>(in), {});
  }
  request.method = !method.empty() ? method : (request.body ? "POST" : "GET");
  if (!request.body && (request.method == "POST" || request.method == "PUT" || request.method == "PATCH")) {
    request.body = std::string();
  }
  for (const std::string& h : headers) {
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::cerr << "squall-fetch: bad --header (want 'Name: value'): " << h << "\n";
      return 2;
    }
    request.headers.add(squall::trim_ows(std::string_view(h).substr(0, colon)),
                            squall::trim_ows(std::string_view(h).substr(colon + 1)));
  }
  request.connect_timeout = seconds(connect_timeout);
  request.request_timeout = seconds(request_timeout);
  if (no_follow) request.follow_redirects = false;
  if (max_redirects) request.max_redirects = *max_redirects;
  request.decompress_response = decompress;
  if (max_body_size) request.max_body_size = *max_body_size;
  request.validate_cert = !insecure;
  request.ca_certs = ca_certs;
  request.client_cert = client_cert;
  request.client_key = client_key;

  squall::HTTPResponse response;
  std::optional<std::string> error;
  int status = 0;
  {
    squall::IOLoop loop;
    squall::AsyncHTTPClient client;
    try {
      response = loop.run_sync([&] { return client.fetch(request); });
    } catch (const squall::HTTPClientError& e) {
      error = e.message();
      if (e.response()) response = *e.response();
      response.code = e.code();
      status = 1;
    } catch (const std::exception& e) {
      // A request the client refuses (bad URL): no response at all.
      error = e.what();
      response.code = 599;
      status = 1;
    }
    client.close();
  }
  if (!body_only) {
    std::string out = to_json(response, url, error ? &*error : nullptr);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  if (error) {
    std::cerr << "squall-fetch: " << *error << "\n";
    return status;
  }
  std::fwrite(response.body.data(), 1, response.body.size(), stdout);
  std::fflush(stdout);
  return 0;
}
