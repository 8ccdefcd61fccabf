// Integration tests of squall-fetch (the client adapter, built from AsyncHTTPClient):
//  - FetchAdapterTest: the contract's JSON object (the default output; --json is accepted
//    and ignored), --body-only's body and exit codes, against a raw one-connection server
//    on 127.0.0.1;
//  - NginxTest: Debian's nginx (started here on 127.0.0.1 with a temp prefix, `daemon
//    off;`, stopped by PID) serving a 5 MiB file, a gzip'd chunked response and a
//    redirect; squall-fetch and curl must get the same bytes;
//  - NginxTLSTest: the same nginx also on TLS (certificates from tests/tls/make_certs.sh);
//    squall-fetch validates its certificate with --ca-certs (by IP and by name), refuses
//    it without, and gets what curl gets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tls/test_certs.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path self_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }
fs::path fetch_binary() { return self_dir() / "squall-fetch"; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs argv with stdout to out_path (stderr to out_path + ".err"); returns the exit
// status (-1 if it did not exit normally).
int run(const std::vector<std::string>& argv, const fs::path& out_path) {
  // Everything the child needs is prepared before fork (other threads may hold malloc's lock).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string out_name = out_path.string(), err_name = out_name + ".err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "squall-fetch-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

uint16_t bound_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

int listen_loopback() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::listen(fd, 16);
  return fd;
}

// Accepts one connection, reads one request head, answers `reply`, closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)), fd_(listen_loopback()) {
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string buf;
      char tmp[4096];
      while (buf.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
      request_ = buf;
      ::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(bound_port(fd_)) + path; }
  const std::string& request() const { return request_; }

 private:
  std::string reply_;
  int fd_;
  std::string request_;
  std::thread thread_;
};

// ---- the adapter -------------------------------------------------------------------------

TEST(FetchAdapterTest, JsonObjectForAResponse) {
  TempDir tmp;
  std::string out;
  {
    OneShotServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi");
    ASSERT_EQ(run({fetch_binary(), "fetch", server.url("/x"), "--json", "--header", "X-Req: 1", "--no-decompress"},
                  tmp.path() / "out"),
              0);
    out = read_file(tmp.path() / "out");
    EXPECT_NE(server.request().find("\r\nX-Req: 1\r\n"), std::string::npos) << server.request();
    EXPECT_EQ(server.request().find("Accept-Encoding"), std::string::npos) << server.request();
    EXPECT_NE(out.find("\"effective_url\": \"" + server.url("/x") + "\""), std::string::npos) << out;
  }
  EXPECT_TRUE(out.starts_with("{\"code\": 404, \"reason\": \"Not Found\", \"headers\": [[\"Content-Length\", \"2\"], "
                              "[\"X-A\", \"b\"]], \"body_b64\": \"aGk=\""))
      << out;
  EXPECT_TRUE(out.ends_with("\"error\": null}\n")) << out;
}

TEST(FetchAdapterTest, PlainModePrintsBodyAndExitsZeroForNon2xx) {
  TempDir tmp;
  OneShotServer server("HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nbody");
  EXPECT_EQ(run({fetch_binary(), server.url("/"), "--body-only"}, tmp.path() / "out"), 0);
  EXPECT_EQ(read_file(tmp.path() / "out"), "body");
}

TEST(FetchAdapterTest, ConnectionRefusedIs599) {
  TempDir tmp;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);  // bound, not listening
  std::string url = "http://127.0.0.1:" + std::to_string(bound_port(fd)) + "/";
  EXPECT_EQ(run({fetch_binary(), url, "--json"}, tmp.path() / "out"), 0);
  std::string out = read_file(tmp.path() / "out");
  EXPECT_TRUE(out.starts_with("{\"code\": 599,")) << out;
  EXPECT_NE(out.find("\"error\": \"Connection refused\"}"), std::string::npos) << out;
  EXPECT_NE(run({fetch_binary(), url, "--body-only"}, tmp.path() / "plain"), 0);
  EXPECT_NE(read_file(tmp.path() / "plain.err").find("Connection refused"), std::string::npos);
  ::close(fd);
}

TEST(FetchAdapterTest, NoFollowReturnsTheRedirect) {
  TempDir tmp;
  OneShotServer server("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(run({fetch_binary(), server.url("/"), "--json", "--no-follow"}, tmp.path() / "out"), 0);
  EXPECT_TRUE(read_file(tmp.path() / "out").starts_with("{\"code\": 302,")) << read_file(tmp.path() / "out");
}

TEST(FetchAdapterTest, TruncatedBodyIs599WithShortError) {
  TempDir tmp;
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  EXPECT_EQ(run({fetch_binary(), server.url("/"), "--json"}, tmp.path() / "out"), 0);
  std::string out = read_file(tmp.path() / "out");
  EXPECT_TRUE(out.starts_with("{\"code\": 599,")) << out;
  EXPECT_NE(out.find("\"error\": \"Stream closed"), std::string::npos) << out;
}

// ---- nginx ---------------------------------------------------------------------------------

constexpr const char* kNginx = "/usr/sbin/nginx";
constexpr const char* kCurl = "/usr/bin/curl";

class NginxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kNginx, X_OK) != 0) GTEST_SKIP() << kNginx << " is missing (apt-get install nginx-light); CI installs it";
    if (::access(kCurl, X_OK) != 0) GTEST_SKIP() << kCurl << " is missing";
    fs::path root = tmp_.path();
    fs::create_directories(root / "html" / "gz");
    fs::create_directories(root / "html" / "sub");
    // 5 MiB of deterministic, incompressible bytes.
    std::string big(5 * 1024 * 1024, '\0');
    std::mt19937 rng(42);
    for (char& c : big) c = static_cast<char>(rng());
    std::ofstream(root / "html" / "big.bin", std::ios::binary) << big;
    std::string text;
    for (int i = 0; text.size() < 300000; ++i) text += "line " + std::to_string(i) + " of a compressible text\n";
    std::ofstream(root / "html" / "gz" / "text.txt", std::ios::binary) << text;
    std::ofstream(root / "html" / "sub" / "index.html", std::ios::binary) << "<p>index of sub</p>\n";

    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      int probe = listen_loopback();
      port_ = bound_port(probe);
      int tls_probe = listen_loopback();
      tls_port_ = bound_port(tls_probe);
      ::close(probe);
      ::close(tls_probe);
      std::string p = root.string();
      std::string tls_listen;
      if (tls_) {
        const auto& certs = squall::testing::TestCerts::get();
        tls_listen = "    listen 127.0.0.1:" + std::to_string(tls_port_) + " ssl;\n    ssl_certificate " +
                     certs.file("server.pem") + ";\n    ssl_certificate_key " + certs.file("server.key") + ";\n";
      }
      std::ofstream(root / "nginx.conf")
          << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << p << "/nginx.pid;\n"
          << "error_log " << p << "/error.log;\nevents { worker_connections 64; }\n"
          << "http {\n  access_log " << p << "/access.log;\n"
          << "  client_body_temp_path " << p << "/client_body;\n  proxy_temp_path " << p << "/proxy;\n"
          << "  fastcgi_temp_path " << p << "/fastcgi;\n  uwsgi_temp_path " << p << "/uwsgi;\n"
          << "  scgi_temp_path " << p << "/scgi;\n"
          << "  types { text/plain txt; text/html html; application/octet-stream bin; }\n"
          << "  server {\n    listen 127.0.0.1:" << port_ << ";\n" << tls_listen << "    root " << p << "/html;\n"
          << "    location /gz/ { gzip on; gzip_min_length 1; gzip_types text/plain; chunked_transfer_encoding on; }\n"
          << "  }\n}\n";
      std::string conf = p + "/nginx.conf", error_log = p + "/error.log";
      pid_t pid = ::fork();
      if (pid == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execl(kNginx, kNginx, "-p", p.c_str(), "-c", conf.c_str(), "-e", error_log.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
      }
      // Wait until it accepts connections (or exits: the port was taken meanwhile).
      auto until = std::chrono::steady_clock::now() + 5s;
      bool up = false;
      while (std::chrono::steady_clock::now() < until) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) break;
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port_);
        up = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        if (up) break;
        std::this_thread::sleep_for(20ms);
      }
      if (up) {
        pid_ = pid;
      } else {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    ASSERT_GT(pid_, 0) << "nginx did not start: " << read_file(tmp_.path() / "error.log");
  }

  void TearDown() override {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  // squall-fetch args... --body-only and curl args..., each must exit 0; returns both outputs.
  std::pair<std::string, std::string> both(std::vector<std::string> fetch_args, std::vector<std::string> curl_args) {
    fetch_args.insert(fetch_args.begin(), fetch_binary().string());
    fetch_args.push_back("--body-only");
    curl_args.insert(curl_args.begin(), {kCurl, "-s", "-S", "--max-time", "20"});
    fs::path a = tmp_.path() / "squall.out", b = tmp_.path() / "curl.out";
    EXPECT_EQ(run(fetch_args, a), 0) << read_file(a.string() + ".err");
    EXPECT_EQ(run(curl_args, b), 0) << read_file(b.string() + ".err");
    return {read_file(a), read_file(b)};
  }

  TempDir tmp_;
  pid_t pid_ = 0;
  uint16_t port_ = 0;
  bool tls_ = false;  // also listen on tls_port_ with TLS (set before SetUp)
  uint16_t tls_port_ = 0;
};

TEST_F(NginxTest, LargeFileMatchesCurlByteForByte) {
  auto [squall, curl] = both({url("/big.bin"), "--no-decompress"}, {url("/big.bin")});
  std::string original = read_file(tmp_.path() / "html" / "big.bin");
  EXPECT_EQ(squall.size(), original.size());
  EXPECT_TRUE(squall == original);
  EXPECT_TRUE(squall == curl);
}

TEST_F(NginxTest, GzipChunkedResponseDecodedMatchesCurlCompressed) {
  auto [squall, curl] = both({url("/gz/text.txt"), "--decompress"}, {"--compressed", url("/gz/text.txt")});
  std::string original = read_file(tmp_.path() / "html" / "gz" / "text.txt");
  EXPECT_EQ(squall.size(), original.size());
  EXPECT_TRUE(squall == original);
  EXPECT_TRUE(squall == curl);
  // And it really was gzip'd and chunked on the wire.
  fs::path json = tmp_.path() / "json.out";
  ASSERT_EQ(run({fetch_binary(), url("/gz/text.txt"), "--json"}, json), 0);
  std::string out = read_file(json);
  EXPECT_NE(out.find("[\"Transfer-Encoding\", \"chunked\"]"), std::string::npos) << out.substr(0, 400);
  EXPECT_NE(out.find("[\"X-Consumed-Content-Encoding\", \"gzip\"]"), std::string::npos) << out.substr(0, 400);
}

TEST_F(NginxTest, GzipBytesUndecodedMatchCurlRaw) {
  auto [squall, curl] = both({url("/gz/text.txt"), "--no-decompress", "--header", "Accept-Encoding: gzip"},
                             {"-H", "Accept-Encoding: gzip", url("/gz/text.txt")});
  EXPECT_TRUE(squall.starts_with("\x1f\x8b")) << "not gzip";
  EXPECT_LT(squall.size(), 300000u);
  EXPECT_TRUE(squall == curl);
}

TEST_F(NginxTest, DirectoryRedirectFollowedLikeCurl) {
  auto [squall, curl] = both({url("/sub")}, {"-L", url("/sub")});
  EXPECT_EQ(squall, "<p>index of sub</p>\n");
  EXPECT_EQ(squall, curl);
}

// ---- nginx over TLS --------------------------------------------------------------------------

class NginxTLSTest : public NginxTest {
 protected:
  NginxTLSTest() { tls_ = true; }
  std::string https(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(tls_port_) + path;
  }
  static std::string ca() { return squall::testing::TestCerts::get().file("ca.pem"); }
};

TEST_F(NginxTLSTest, FetchValidatesTheCertificateWithCaCertsAndMatchesCurl) {
  auto [squall, curl] = both({https("/big.bin"), "--no-decompress", "--ca-certs", ca()},
                             {"--cacert", ca(), https("/big.bin")});
  std::string original = read_file(tmp_.path() / "html" / "big.bin");
  EXPECT_EQ(squall.size(), original.size());
  EXPECT_TRUE(squall == original);
  EXPECT_TRUE(squall == curl);
}

TEST_F(NginxTLSTest, FetchValidatesByHostName) {
  auto [squall, curl] = both({https("/gz/text.txt", "localhost"), "--ca-certs", ca()},
                             {"--compressed", "--cacert", ca(), https("/gz/text.txt", "localhost")});
  EXPECT_EQ(squall, read_file(tmp_.path() / "html" / "gz" / "text.txt"));
  EXPECT_TRUE(squall == curl);
}

TEST_F(NginxTLSTest, FetchFollowsRedirectsOverTLS) {
  auto [squall, curl] = both({https("/sub"), "--ca-certs", ca()}, {"-L", "--cacert", ca(), https("/sub")});
  EXPECT_EQ(squall, "<p>index of sub</p>\n");
  EXPECT_EQ(squall, curl);
}

TEST_F(NginxTLSTest, WithoutTheCAItIs599WithTheReason) {
  fs::path out = tmp_.path() / "json.out";
  ASSERT_EQ(run({fetch_binary(), https("/big.bin"), "--json"}, out), 0);
  std::string json = read_file(out);
  EXPECT_TRUE(json.starts_with("{\"code\": 599,")) << json;
  EXPECT_NE(json.find("\"error\": \"certificate verify failed: unable to get local issuer certificate\"}"),
            std::string::npos)
      << json;
  fs::path plain = tmp_.path() / "plain.out";
  EXPECT_EQ(run({fetch_binary(), https("/big.bin"), "--body-only"}, plain), 1);
  EXPECT_NE(read_file(plain.string() + ".err").find("certificate verify failed"), std::string::npos);
  fs::path insecure = tmp_.path() / "insecure.out";
  EXPECT_EQ(run({fetch_binary(), https("/sub/"), "--insecure", "--body-only"}, insecure), 0);
  EXPECT_EQ(read_file(insecure), "<p>index of sub</p>\n");
}

}  // namespace
