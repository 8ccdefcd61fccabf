// The seeds' first example, in Squall: an Application with one rule, ("/", IndexHandler),
// served by an HTTPServer. GET /?greeting=Hi answers "Hi, friendly user!".
//
//   example-hello-server --port 8000
//   curl 'http://127.0.0.1:8000/?greeting=Salut'
//
// With --port 0 the kernel picks a free port, printed as "port=N" on stdout (what the
// test, examples_test.py, reads).
//
// SIGTERM or SIGINT stops it gracefully (requests in flight get up to 10 s); a second
// signal stops it at once.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "squall/httpserver.h"
#include "squall/ioloop.h"
#include "squall/stop_signals.h"
#include "squall/web.h"

namespace {

class IndexHandler : public squall::RequestHandler {
 public:
  squall::Task<void> get() override {
    std::string greeting = get_argument("greeting", "Hello");
    write(greeting + ", friendly user!");
    co_return;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"The seeds' hello server"};
  int port = 8000;
  cli.add_option("--port", port, "TCP port on 127.0.0.1 (0: the kernel chooses, printed as port=N)")->capture_default_str()->check(CLI::Range(0, 65535));
  CLI11_PARSE(cli, argc, argv);

  squall::block_stop_signals();  // before any thread exists
  squall::Application app({{"/", squall::handler<IndexHandler>()}});
  squall::IOLoop loop;
  squall::HTTPServer server(app);
  server.listen(static_cast<uint16_t>(port), "127.0.0.1");
  if (port == 0) {
    std::printf("port=%u\n", static_cast<unsigned>(server.ports().front()));
    std::fflush(stdout);
  }
  squall::GracefulStop stop(loop, [&] { return server.shutdown(std::chrono::seconds(10)); });
  loop.start();
}
