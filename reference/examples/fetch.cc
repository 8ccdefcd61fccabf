// The seeds' first example (Tornado's async client, traced step by step in seed 000):
// a coroutine fetches a URL and prints the length of the body, then stops the loop.
//
//   example-fetch http://127.0.0.1:8888/
//
// http:// and https:// URLs (certificates checked against the system CAs). Exit status 1
// on failure (the message on stderr).
#include <cstdio>
#include <exception>
#include <string>

#include "squall/httpclient.h"
#include "squall/ioloop.h"
#include "squall/task.h"

namespace {

squall::Task<size_t> download(std::string url) {
  squall::AsyncHTTPClient http_client;
  // The coroutine suspends here; the loop runs the resolve, connect, write and read
  // steps and resumes it with the response (seed 000, steps 6 to 51).
  squall::HTTPResponse response = co_await http_client.fetch(url);
  co_return response.body.size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  squall::IOLoop loop;
  try {
    std::string url = argv[1];
    size_t length = loop.run_sync([&] { return download(url); });
    std::printf("response.length = %zu\n", length);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
