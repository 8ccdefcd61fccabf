// An outside project's program, built against an installed Squall (ci/install-test.sh):
// an HTTPServer on 127.0.0.1 (a port the kernel picks) and an AsyncHTTPClient fetching
// from it on the same loop. Exit status 0 when the body is the one the handler wrote.
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include <squall/httpclient.h>
#include <squall/httpserver.h>
#include <squall/ioloop.h>
#include <squall/task.h>
#include <squall/web.h>

namespace {

class EchoWordHandler : public squall::RequestHandler {
 public:
  squall::Task<void> get() override {
    write("outside project got: " + get_argument("word", "nothing"));
    co_return;
  }
};

squall::Task<std::string> fetch_body(squall::AsyncHTTPClient& client, std::string url) {
  squall::HTTPResponse response = co_await client.fetch(url);
  co_return response.body;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  squall::IOLoop loop;
  squall::ApplicationSettings settings;
  settings.log_requests = false;
  squall::Application app({{"/echo", squall::handler<EchoWordHandler>()}}, settings);
  squall::HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  std::string url = "http://127.0.0.1:" + std::to_string(server.ports().at(0)) + "/echo?word=installed";
  const std::string want = "outside project got: installed";
  int status = 0;
  try {
    auto client = std::make_unique<squall::AsyncHTTPClient>();
    std::string body = loop.run_sync([&] { return fetch_body(*client, url); }, 10s);
    status = body == want ? 0 : 1;
    std::printf("%s: %s\n", status == 0 ? "ok" : "WRONG BODY", body.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    status = 1;
  }
  server.stop();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
  return status;
}
