// The contract's /plaintext and /json handlers (TechEmpower's two "hello" tests), shared
// by squall-contract-app and the web layer's benchmark (bench/web_bench.cc), so that the
// benchmark measures exactly what the load runs serve.
#pragma once

#include "squall/task.h"
#include "squall/web.h"

namespace squall::hello {

class PlaintextHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, World!");
    return {};  // nothing to wait for: a plain call, no coroutine frame
  }
};

class JsonHandler : public RequestHandler {
 public:
  Task<void> get() override {
    // The contract's exact type, set once: write_json() would first set the type with
    // "; charset=UTF-8", which this handler then replaced (two header rewrites per request).
    set_header("Content-Type", "application/json");
    write(R"({"message":"Hello, World!"})");
    return {};
  }
};

}  // namespace squall::hello
