// Certificates for the TLS tests: make_certs.sh (beside this file) runs the `openssl`
// command into a temporary directory, once per test program, removed at exit. The files
// and what they are for are listed in make_certs.sh.
#pragma once

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace squall::testing {

class TestCerts {
 public:
  // The shared set (made on first use). Throws std::runtime_error if openssl fails.
  static const TestCerts& get() {
    static const TestCerts certs;
    return certs;
  }

  // dir/name, e.g. file("server.pem").
  std::string file(std::string_view name) const { return (dir_ / name).string(); }
  const std::filesystem::path& dir() const { return dir_; }

  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

 private:
  TestCerts() {
    std::string templ = (std::filesystem::temp_directory_path() / "squall-certs-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    std::filesystem::path script = std::filesystem::path(__FILE__).parent_path() / "make_certs.sh";
    std::string command = "/bin/sh '" + script.string() + "' '" + dir_.string() + "' >/dev/null";
    int status = std::system(command.c_str());
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("make_certs.sh failed: " + command);
    }
  }
  ~TestCerts() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
};

}  // namespace squall::testing
