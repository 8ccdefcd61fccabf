// The web layer without a network: Application::start_request is driven with a fake
// HTTPConnection that records what the handler answers.
#include "squall/web.h"

#include <gtest/gtest.h>
#include <re2/re2.h>
#include <zlib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <cstdio>
#include <string>
#include <thread>

#include "squall/http1connection.h"
#include "squall/httpclient.h"
#include "squall/httpserver.h"
#include "squall/log.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

// What the lines of a response head say about its framing, read by the test itself.
FramingLines framing_in_lines(const HTTPHeaders& h) {
  FramingLines framing;
  if (std::optional<std::string> length = h.get("Content-Length")) {
    framing.has_content_length = true;
    framing.content_length = std::stoull(*length);
  }
  framing.transfer_encoding = h.contains("Transfer-Encoding");
  framing.date = h.contains("Date");
  framing.server = h.contains("Server");
  return framing;
}

// Records the response written through the HTTPConnection interface. A head whose
// framing was noted (for the connection, which then does not read its lines) must say
// what its lines say: checked for every response of these tests.
class FakeConnection : public HTTPConnection {
 public:
  ResponseStartLine start_line;
  HTTPHeaders headers;
  std::string body;
  std::vector<std::string> pieces;  // first chunk (with the head), then each write()
  int head_count = 0;
  bool finished = false;

  Future<void> write_headers(const ResponseStartLine& line, HTTPHeaders& h, std::string_view chunk) override {
    ++head_count;
    start_line = line;
    if (const FramingLines* noted = h.noted_framing()) {
      const FramingLines read = framing_in_lines(h);
      EXPECT_EQ(noted->has_content_length, read.has_content_length);
      EXPECT_EQ(noted->content_length, read.content_length);
      EXPECT_EQ(noted->transfer_encoding, read.transfer_encoding);
      EXPECT_EQ(noted->date, read.date);
      EXPECT_EQ(noted->server, read.server);
    }
    headers = h;
    body.append(chunk);
    pieces.emplace_back(chunk);
    return make_ready_future();
  }
  Future<void> write_headers(const RequestStartLine&, HTTPHeaders&, std::string_view) override {
    ADD_FAILURE() << "server wrote a request head";
    return make_ready_future();
  }
  Future<void> write(std::string_view chunk) override {
    EXPECT_EQ(head_count, 1) << "body written before the head";
    EXPECT_FALSE(finished);
    body.append(chunk);
    pieces.emplace_back(chunk);
    return make_ready_future();
  }
  void finish() override {
    EXPECT_FALSE(finished) << "finished twice";
    finished = true;
  }
};

struct Response {
  int code = 0;
  std::string reason;
  HTTPHeaders headers;
  std::string body;
  std::vector<std::string> pieces;
  bool finished = false;
  std::string header(std::string_view name) const { return headers.get(name, ""); }
};

// Sends one request through the application and runs the loop until it is answered.
Response fetch(Application& app, std::string method, std::string target, HTTPHeaders headers = {},
               std::vector<std::string> body_chunks = {}) {
  FakeConnection conn;
  std::unique_ptr<HTTPMessageDelegate> delegate = app.start_request(RequestContext{"10.0.0.7", "http"}, conn);
  IOLoop::current().run_sync(
      [&]() -> Task<void> {
        FlowControl wait = delegate->headers_received(RequestStartLine{method, target, "HTTP/1.1"}, headers);
        if (wait) co_await *wait;
        for (std::string& chunk : body_chunks) {
          FlowControl w = delegate->data_received(std::move(chunk));
          if (w) co_await *w;
        }
        delegate->finish();
        while (!conn.finished) co_await sleep(1ms);
      },
      5s);
  delegate.reset();
  return Response{conn.start_line.code, conn.start_line.reason, conn.headers, conn.body, conn.pieces, conn.finished};
}

Response fetch_body(Application& app, std::string method, std::string target, std::string content_type,
                    std::string body) {
  HTTPHeaders headers;
  headers.add("Content-Type", content_type);
  headers.add("Content-Length", std::to_string(body.size()));
  return fetch(app, std::move(method), std::move(target), std::move(headers), {std::move(body)});
}

// A handler whose GET answers with a fixed text.
class TextHandler : public RequestHandler {
 public:
  explicit TextHandler(std::string text) : text_(std::move(text)) {}
  Task<void> get() override {
    write(text_);
    co_return;
  }

 private:
  std::string text_;
};

class ArgsHandler : public RequestHandler {
 public:
  Task<void> get() override { return post(); }
  Task<void> post() override {
    Json out = Json::object();
    for (const auto& e : request().arguments) {
      Json values = Json::array();
      for (const auto& v : e.values) values.push_back(v);
      out.set(e.name, values);
    }
    write(out);
    co_return;
  }
};

TEST(Web, GetAnswersBodyWithLengthAndDefaultType) {
  Application app({{"/", handler<TextHandler>(std::string("hello"))}});
  Response r = fetch(app, "GET", "/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.header("Content-Length"), "5");
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=UTF-8");
  EXPECT_FALSE(r.header("Date").empty());
}

TEST(Web, FirstMatchingRuleWins) {
  Application app({{"/a/.*", handler<TextHandler>(std::string("first"))},
                   {"/a/b", handler<TextHandler>(std::string("second"))}});
  EXPECT_EQ(fetch(app, "GET", "/a/b").body, "first");
}

TEST(Web, PatternsAreAnchored) {
  Application app({{"/a", handler<TextHandler>(std::string("a"))}});
  EXPECT_EQ(fetch(app, "GET", "/a").code, 200);
  EXPECT_EQ(fetch(app, "GET", "/ab").code, 404);
}

class PathArgsHandler : public RequestHandler {
 public:
  Task<void> get() override {
    Json out = Json::array();
    for (const auto& a : path_args()) out.push_back(a);
    for (const auto& [k, v] : path_kwargs()) out.push_back(Json::array({k, v}));
    write(out);
    co_return;
  }
};

TEST(Web, PositionalPathArgsAreDecoded) {
  Application app({{"/path/([^/]+)/([0-9]+)", handler<PathArgsHandler>()}});
  EXPECT_EQ(fetch(app, "GET", "/path/a%20b/12").body, R"(["a b","12"])");
}

TEST(Web, NamedPathArgs) {
  Application app({{"/named/(?P<first>[^/]+)/(?P<second>[^/]+)", handler<PathArgsHandler>()}});
  EXPECT_EQ(fetch(app, "GET", "/named/x%2Fy/z").body, R"([["first","x/y"],["second","z"]])");
}

TEST(Web, NoMatchingRuleIs404) {
  Application app({{"/", handler<TextHandler>(std::string("root"))}});
  Response r = fetch(app, "GET", "/nothing");
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.reason, "Not Found");
  EXPECT_NE(r.body.find("404: Not Found"), std::string::npos);
}

TEST(Web, DefaultHandlerServesUnmatchedPaths) {
  ApplicationSettings settings;
  settings.default_handler = handler<TextHandler>(std::string("fallback"));
  Application app({{"/", handler<TextHandler>(std::string("root"))}}, settings);
  Response r = fetch(app, "GET", "/nothing");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "fallback");
}

TEST(Web, MethodNotImplementedIs405) {
  Application app({{"/", handler<TextHandler>(std::string("root"))}});
  EXPECT_EQ(fetch(app, "POST", "/").code, 405);
  EXPECT_EQ(fetch(app, "DELETE", "/").code, 405);
}

class GetPostHandler : public TextHandler {
 public:
  GetPostHandler() : TextHandler("gp") {}
  Task<void> post() override { return get(); }
};

TEST(Web, MethodNotAllowedListsTheOverriddenMethodsInAllow) {
  Application app({{"/", handler<TextHandler>(std::string("root"))},
                   {"/gp", handler<GetPostHandler>()},
                   {"/args", handler<ArgsHandler>()}});
  Response r = fetch(app, "DELETE", "/");
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.header("Allow"), "GET");
  EXPECT_EQ(fetch(app, "BREW", "/").header("Allow"), "GET");
  EXPECT_EQ(fetch(app, "PUT", "/gp").header("Allow"), "GET, POST");  // GET inherited from TextHandler
  EXPECT_EQ(fetch(app, "HEAD", "/args").header("Allow"), "GET, POST");
  EXPECT_FALSE(fetch(app, "GET", "/").headers.contains("Allow"));
}

TEST(Web, MethodNotAllowedFromAnotherFactoryStillCarriesAllow) {
  Application app({{"/", [] { return std::unique_ptr<RequestHandler>(std::make_unique<TextHandler>("x")); }}});
  Response r = fetch(app, "DELETE", "/");
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, POST, PATCH, PUT, OPTIONS");  // not the refused one
}

TEST(Web, UnknownMethodIs405) {
  Application app({{"/", handler<TextHandler>(std::string("root"))}});
  Response r = fetch(app, "BREW", "/");
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.reason, "Method Not Allowed");
}

TEST(Web, QueryArguments) {
  Application app({{"/args", handler<ArgsHandler>()}});
  EXPECT_EQ(fetch(app, "GET", "/args?a=1&b=x+y&a=%32&empty=").body,
            R"({"a":["1","2"],"b":["x y"],"empty":[""]})");
}

TEST(Web, UrlencodedBodyArgumentsFollowQueryArguments) {
  Application app({{"/args", handler<ArgsHandler>()}});
  Response r = fetch_body(app, "POST", "/args?a=q", "application/x-www-form-urlencoded", "a=b1&c=%41");
  EXPECT_EQ(r.body, R"({"a":["q","b1"],"c":["A"]})");
}

class FormHandler : public RequestHandler {
 public:
  Task<void> post() override {
    Json files = Json::object();
    for (const auto& e : request().files) {
      Json list = Json::array();
      for (const HTTPFile& f : e.values) {
        list.push_back(Json::object({{"filename", f.filename},
                                     {"content_type", f.content_type},
                                     {"size", static_cast<int64_t>(f.body.size())}}));
      }
      files.set(e.name, list);
    }
    write(Json::object({{"field", get_body_argument("field")},
                        {"query", get_query_argument("field", "none")},
                        {"files", files}}));
    co_return;
  }
};

TEST(Web, MultipartBodyGivesFieldsAndFiles) {
  Application app({{"/form", handler<FormHandler>()}});
  std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"field\"\r\n\r\n"
      "value\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "12345\r\n"
      "--XyZ--\r\n";
  Response r = fetch_body(app, "POST", "/form", "multipart/form-data; boundary=XyZ", body);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body,
            R"({"field":"value","query":"none","files":{"up":[{"filename":"a.txt","content_type":"text/plain","size":5}]}})");
}

class RequiredArgHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(get_argument("needed"));
    co_return;
  }
};

TEST(Web, MissingArgumentIs400) {
  Application app({{"/", handler<RequiredArgHandler>()}});
  EXPECT_EQ(fetch(app, "GET", "/").code, 400);
  Response ok = fetch(app, "GET", "/?needed=%20%20yes%01%20");
  EXPECT_EQ(ok.code, 200);
  EXPECT_EQ(ok.body, "yes");  // control characters become spaces, then stripped
}

class JsonHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(Json::object({{"message", "Hello, World!"},
                        {"tricky", "q\"b\\n\n</script>\x01\xc3\xa9\xf0\x9f\x98\x80\xff"},
                        {"n", 3},
                        {"x", 1.5},
                        {"t", true},
                        {"z", nullptr}}));
    co_return;
  }
};

TEST(Web, WriteJsonSetsContentTypeAndEscapes) {
  Application app({{"/json", handler<JsonHandler>()}});
  Response r = fetch(app, "GET", "/json");
  EXPECT_EQ(r.header("Content-Type"), "application/json; charset=UTF-8");
  EXPECT_EQ(r.body,
            R"({"message":"Hello, World!","tricky":"q\"b\\n\n<\/script>\u0001\u00e9\ud83d\ude00\ufffd","n":3,"x":1.5,"t":true,"z":null})");
}

TEST(Json, DumpsScalarsAndNesting) {
  EXPECT_EQ(Json().dump(), "null");
  EXPECT_EQ(Json(2.0).dump(), "2.0");
  EXPECT_EQ(Json(-7).dump(), "-7");
  EXPECT_EQ(Json::array({Json::array(), Json::object()}).dump(), "[[],{}]");
  EXPECT_EQ(json_quote("tab\there"), R"("tab\there")");
}

class HeaderInjectionHandler : public RequestHandler {
 public:
  Task<void> get() override {
    bool refused = false;
    try {
      set_header("X-Evil", "a\r\nSet-Cookie: owned=1");
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    try {
      add_header("X-Evil", "a\nb");
    } catch (const std::invalid_argument&) {
      refused = refused && true;
    }
    write(refused ? "refused" : "accepted");
    co_return;
  }
};

TEST(Web, SetHeaderRefusesCrLf) {
  Application app({{"/", handler<HeaderInjectionHandler>()}});
  Response r = fetch(app, "GET", "/");
  EXPECT_EQ(r.body, "refused");
  EXPECT_FALSE(r.headers.contains("X-Evil"));
  EXPECT_FALSE(r.headers.contains("Set-Cookie"));
}

// Control bytes anywhere in a value — inside the first eight bytes, in a later block of
// eight, in the tail — are refused; bytes of 0x80 and above (UTF-8, obs-text) are not.
// A plain-function get(): runs without a coroutine.
class ControlByteHandler : public RequestHandler {
 public:
  Task<void> get() override {
    const std::string values[] = {std::string("abc\x7f"), std::string("abcdefgh\x7f"),
                                  std::string("abcdefghijklmnop\x01q"), std::string("abcdefgh\tq"),
                                  std::string("abcdefghijklmnopqrstu\x1f")};
    std::string verdicts;
    for (const std::string& value : values) {
      try {
        set_header("X-Probe", value);
        verdicts += 'A';
      } catch (const std::invalid_argument&) {
        verdicts += 'R';
      }
    }
    set_header("X-Probe", "caf\xc3\xa9 au lait, \xff long enough");
    write(verdicts);
    return {};
  }
};

TEST(Web, HeaderValuesWithControlBytesAnywhereAreRefused) {
  Application app({{"/", handler<ControlByteHandler>()}});
  Response r = fetch(app, "GET", "/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "RRRRR");
  EXPECT_EQ(r.headers.get_first("X-Probe"), "caf\xc3\xa9 au lait, \xff long enough");
}

// The lifecycle with plain-function steps (no coroutine) mixed with steps that suspend:
// every order of the two runs prepare, the method and finish once, in order.
class MixedStepsHandler : public RequestHandler {
 public:
  Task<void> prepare() override {
    const std::string mode = get_argument("mode");
    if (mode == "finish-in-prepare") {
      finish("prepared");
      return {};
    }
    if (mode == "throw-in-prepare") throw HTTPError(403);
    if (mode == "slow-prepare") return slow_prepare();
    trace_ += "p";
    return {};
  }
  Task<void> get() override {
    const std::string mode = get_argument("mode");
    if (mode == "throw-in-get") throw HTTPError(409);
    if (mode == "slow-get") return slow_get();
    trace_ += "g";
    write(trace_);
    return {};
  }

 private:
  Task<void> slow_prepare() {
    co_await sleep(1ms);
    trace_ += "P";
  }
  Task<void> slow_get() {
    trace_ += "g";
    co_await sleep(1ms);
    trace_ += "G";
    write(trace_);
  }
  std::string trace_;
};

TEST(Web, PlainAndSuspendingStepsRunInOrder) {
  Application app({{"/", handler<MixedStepsHandler>()}});
  testing::internal::CaptureStderr();
  const Response plain = fetch(app, "GET", "/?mode=plain");
  const Response slow_prepare = fetch(app, "GET", "/?mode=slow-prepare");
  const Response slow_get = fetch(app, "GET", "/?mode=slow-get");
  const Response finished = fetch(app, "GET", "/?mode=finish-in-prepare");
  const Response refused = fetch(app, "GET", "/?mode=throw-in-prepare");
  const Response conflict = fetch(app, "GET", "/?mode=throw-in-get");
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(plain.body, "pg");
  EXPECT_EQ(slow_prepare.body, "Pg");
  EXPECT_EQ(slow_get.body, "pgG");
  EXPECT_EQ(finished.code, 200);
  EXPECT_EQ(finished.body, "prepared");
  EXPECT_EQ(refused.code, 403);
  EXPECT_EQ(conflict.code, 409);
}

class UncaughtInjectionHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Location", "/x\r\n\r\nsmuggled");
    co_return;
  }
};

TEST(Web, UncaughtHeaderInjectionBecomes500) {
  Application app({{"/", handler<UncaughtInjectionHandler>()}});
  testing::internal::CaptureStderr();
  Response r = fetch(app, "GET", "/");
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.code, 500);
  EXPECT_FALSE(r.headers.contains("Location"));
  EXPECT_EQ(r.body.find("smuggled"), std::string::npos);
}

class RedirectHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string kind = get_argument("kind", "temp");
    if (kind == "perm") {
      redirect("/target", true);
    } else if (kind == "303") {
      redirect("/other", false, 303);
    } else {
      redirect("/target?x=1");
    }
    co_return;
  }
};

TEST(Web, RedirectSetsStatusAndLocation) {
  Application app({{"/r", handler<RedirectHandler>()}});
  Response temp = fetch(app, "GET", "/r");
  EXPECT_EQ(temp.code, 302);
  EXPECT_EQ(temp.header("Location"), "/target?x=1");
  EXPECT_EQ(temp.header("Content-Length"), "0");
  Response perm = fetch(app, "GET", "/r?kind=perm");
  EXPECT_EQ(perm.code, 301);
  EXPECT_EQ(perm.header("Location"), "/target");
  EXPECT_EQ(fetch(app, "GET", "/r?kind=303").code, 303);
}

class HTTPErrorHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("X-Dropped", "yes");
    write("partial output that must not be sent");
    if (!path_args().empty() && path_args()[0] == "418") throw HTTPError(418, "log only", "Teapot Time");
    throw HTTPError(std::stoi(path_args()[0]));
    co_return;
  }
};

TEST(Web, HTTPErrorSetsStatusAndReason) {
  Application app({{"/e/([0-9]+)", handler<HTTPErrorHandler>()}});
  testing::internal::CaptureStderr();
  Response teapot = fetch(app, "GET", "/e/418");
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(teapot.code, 418);
  EXPECT_EQ(teapot.reason, "Teapot Time");
  EXPECT_EQ(teapot.body, "<html><title>418: Teapot Time</title><body>418: Teapot Time</body></html>");
  EXPECT_FALSE(teapot.headers.contains("X-Dropped"));
  EXPECT_NE(log.find("418 GET /e/418 (10.0.0.7): log only"), std::string::npos) << log;
  EXPECT_EQ(teapot.body.find("log only"), std::string::npos);
  Response forbidden = fetch(app, "GET", "/e/403");
  EXPECT_EQ(forbidden.code, 403);
  EXPECT_EQ(forbidden.reason, "Forbidden");
}

class ThrowingHandler : public RequestHandler {
 public:
  Task<void> get() override {
    co_await sleep(1ms);
    throw std::runtime_error("secret internal detail");
  }
};

TEST(Web, UncaughtExceptionIs500WithoutDetailAndIsLogged) {
  Application app({{"/error", handler<ThrowingHandler>()}});
  testing::internal::CaptureStderr();
  Response r = fetch(app, "GET", "/error");
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.reason, "Internal Server Error");
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_NE(log.find("application] Uncaught exception GET /error (10.0.0.7)"), std::string::npos) << log;
  EXPECT_NE(log.find("secret internal detail"), std::string::npos) << log;
}

TEST(Web, EtagAndIfNoneMatchGive304) {
  Application app({{"/", handler<TextHandler>(std::string("cached body"))}});
  Response first = fetch(app, "GET", "/");
  std::string etag = first.header("Etag");
  ASSERT_EQ(etag.size(), 13u);  // quoted base64url of a 64-bit hash
  EXPECT_EQ(etag.front(), '"');

  HTTPHeaders same{{"If-None-Match", etag}};
  Response again = fetch(app, "GET", "/", same);
  EXPECT_EQ(again.code, 304);
  EXPECT_EQ(again.body, "");
  EXPECT_FALSE(again.headers.contains("Content-Type"));
  EXPECT_FALSE(again.headers.contains("Content-Length"));

  HTTPHeaders weak{{"If-None-Match", "\"other\", W/" + etag}};
  EXPECT_EQ(fetch(app, "GET", "/", weak).code, 304);
  HTTPHeaders star{{"If-None-Match", "*"}};
  EXPECT_EQ(fetch(app, "GET", "/", star).code, 304);
  HTTPHeaders different{{"If-None-Match", "\"nope\""}};
  Response changed = fetch(app, "GET", "/", different);
  EXPECT_EQ(changed.code, 200);
  EXPECT_EQ(changed.body, "cached body");
}


// The ETag is the XXH3-64 of the body in base64url, quoted: known vectors (from xxhsum
// -H3: "abc" 78af5f94892f3950, "" 2d06800538d394c2, a million 'a' b1fd6fae5285c4eb),
// and distinct bodies get distinct tags.
TEST(Web, EtagIsTheXxh3OfTheBody) {
  Application app({{"/abc", handler<TextHandler>(std::string("abc"))},
                   {"/empty", handler<TextHandler>(std::string())},
                   {"/million", handler<TextHandler>(std::string(1000000, 'a'))},
                   {"/n/(.*)", handler<PathArgsHandler>()}});
  EXPECT_EQ(fetch(app, "GET", "/abc").header("Etag"), "\"HivX5SJLzlQ\"");
  EXPECT_EQ(fetch(app, "GET", "/empty").header("Etag"), "\"C0GgAU405TC\"");
  EXPECT_EQ(fetch(app, "GET", "/million").header("Etag"), "\"LH9b65ShcTr\"");
  std::set<std::string> seen;
  for (int i = 0; i < 40; ++i) seen.insert(fetch(app, "GET", "/n/" + std::to_string(i)).header("Etag"));
  EXPECT_EQ(seen.size(), 40u);
}

// A handler's own compute_etag() is used, and its value is still checked: one that would
// inject a header line fails the answer (500) instead (the built-in tag is not checked).
class TaggedHandler : public RequestHandler {
 public:
  explicit TaggedHandler(std::string tag) : tag_(std::move(tag)) {}
  Task<void> get() override {
    write("tagged");
    co_return;
  }
  std::optional<std::string> compute_etag() const override { return tag_; }

 private:
  std::string tag_;
};

// A subclass inherits its base's compute_etag(): still the handler's, still checked.
class TaggedChild : public TaggedHandler {
 public:
  TaggedChild() : TaggedHandler("\"x\"\r\nX-Injected: 1") {}
};

TEST(Web, AHandlersComputeEtagIsUsedAndChecked) {
  Application app({{"/good", handler<TaggedHandler>(std::string("\"v1\""))},
                   {"/bad", handler<TaggedHandler>(std::string("\"x\"\r\nX-Injected: 1"))},
                   {"/child", handler<TaggedChild>()}});
  Response good = fetch(app, "GET", "/good");
  EXPECT_EQ(good.code, 200);
  EXPECT_EQ(good.header("Etag"), "\"v1\"");
  testing::internal::CaptureStderr();
  Response bad = fetch(app, "GET", "/bad");
  Response child = fetch(app, "GET", "/child");
  std::string log = testing::internal::GetCapturedStderr();
  for (const Response* r : {&bad, &child}) {
    EXPECT_EQ(r->code, 500);
    EXPECT_FALSE(r->headers.contains("X-Injected"));
    EXPECT_EQ(r->header("Etag"), "");
  }
  EXPECT_NE(log.find("Unsafe header value"), std::string::npos) << log;
}

class BigTextHandler : public RequestHandler {
 public:
  explicit BigTextHandler(size_t size) : size_(size) {}
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    std::string body;
    while (body.size() < size_) body += "squall squall squall ";
    body.resize(size_);
    write(body);
    co_return;
  }

 private:
  size_t size_;
};

std::string gunzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buffer[4096];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

TEST(Web, GzipWhenEnabledAndAccepted) {
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/gzip", handler<BigTextHandler>(size_t{5000})}}, settings);
  HTTPHeaders accept{{"Accept-Encoding", "gzip, deflate"}};
  Response r = fetch(app, "GET", "/gzip", accept);
  EXPECT_EQ(r.header("Content-Encoding"), "gzip");
  EXPECT_EQ(r.header("Vary"), "Accept-Encoding");
  EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size()));
  EXPECT_LT(r.body.size(), 5000u);
  std::string plain = gunzip(r.body);
  EXPECT_EQ(plain.size(), 5000u);
  EXPECT_EQ(plain.substr(0, 7), "squall ");
}

TEST(Web, GzipFollowsAcceptEncodingQValues) {
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/gzip", handler<BigTextHandler>(size_t{5000})}}, settings);
  auto gzipped = [&](const char* accept) {
    HTTPHeaders headers{{"Accept-Encoding", accept}};
    return fetch(app, "GET", "/gzip", headers).header("Content-Encoding") == "gzip";
  };
  EXPECT_FALSE(gzipped("gzip;q=0"));
  EXPECT_FALSE(gzipped("gzip; q=0.000, deflate"));
  EXPECT_FALSE(gzipped("gzip;q=0, *"));  // an explicit refusal beats the wildcard
  EXPECT_FALSE(gzipped("*;q=0"));
  EXPECT_FALSE(gzipped("deflate, br"));
  EXPECT_FALSE(gzipped("gzipx"));
  EXPECT_TRUE(gzipped("gzip;q=0.5"));
  EXPECT_TRUE(gzipped("deflate;q=1, GZIP ; Q=0.001"));
  EXPECT_TRUE(gzipped("*"));
  EXPECT_TRUE(gzipped("identity, x-gzip"));
  // Several Accept-Encoding lines are one list (RFC 9110 §5.3): the refusal on one line
  // beats the wildcard on another, and gzip on the second line counts.
  auto gzipped_lines = [&](const char* first, const char* second) {
    HTTPHeaders headers{{"Accept-Encoding", first}, {"Accept", "*/*"}, {"accept-encoding", second}};
    return fetch(app, "GET", "/gzip", headers).header("Content-Encoding") == "gzip";
  };
  EXPECT_FALSE(gzipped_lines("gzip;q=0", "*"));
  EXPECT_TRUE(gzipped_lines("br", "gzip"));
}

TEST(Web, NoGzipWithoutAcceptEncodingOrWhenSmallOrDisabled) {
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/big", handler<BigTextHandler>(size_t{5000})}, {"/small", handler<BigTextHandler>(size_t{100})}},
                  settings);
  Response plain = fetch(app, "GET", "/big");
  EXPECT_FALSE(plain.headers.contains("Content-Encoding"));
  EXPECT_EQ(plain.body.size(), 5000u);
  EXPECT_EQ(plain.header("Vary"), "Accept-Encoding");  // also when this client gets no gzip
  HTTPHeaders accept{{"Accept-Encoding", "gzip"}};
  EXPECT_FALSE(fetch(app, "GET", "/small", accept).headers.contains("Content-Encoding"));

  Application off({{"/big", handler<BigTextHandler>(size_t{5000})}});
  Response r = fetch(off, "GET", "/big", accept);
  EXPECT_FALSE(r.headers.contains("Content-Encoding"));
  EXPECT_FALSE(r.headers.contains("Vary"));
}

// A handler that sets, in its own spelling, the lines finish() and flush() would add.
class OwnLinesHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("etag", "\"mine\"");
    set_header("vary", "Cookie");
    set_header("content-LENGTH", "5");
    write("hello");
    co_return;
  }
};

// Lines the handler set itself are found whatever their case and not added again: its
// Etag stands (and, as Tornado, is not compared with If-None-Match: only a tag finish()
// made is), its Content-Length stands, its Vary gets Accept-Encoding appended.
TEST(Web, LinesTheHandlerSetAreNotAddedAgain) {
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/own", handler<OwnLinesHandler>()}, {"/text", handler<TextHandler>(std::string("hello"))}},
                  settings);
  HTTPHeaders conditional{{"If-None-Match", "\"mine\""}};
  Response own = fetch(app, "GET", "/own", conditional);
  EXPECT_EQ(own.code, 200);
  EXPECT_EQ(own.body, "hello");
  EXPECT_EQ(own.headers.get_list("Etag"), (std::vector<std::string_view>{"\"mine\""}));
  EXPECT_EQ(own.headers.get_list("Content-Length"), (std::vector<std::string_view>{"5"}));
  EXPECT_EQ(own.headers.get_list("Vary"), (std::vector<std::string_view>{"Cookie, Accept-Encoding"}));
  // Without them: one of each, added in this order after the handler's lines.
  Response text = fetch(app, "GET", "/text");
  std::vector<std::string> names;
  for (HeaderField f : text.headers) names.emplace_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Server", "Content-Type", "Date", "Etag", "Content-Length", "Vary"}));
  // A 304 made from finish()'s own tag drops the body's lines but keeps Vary.
  HTTPHeaders same{{"If-None-Match", text.header("Etag")}};
  Response not_modified = fetch(app, "GET", "/text", same);
  EXPECT_EQ(not_modified.code, 304);
  names.clear();
  for (HeaderField f : not_modified.headers) names.emplace_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Server", "Date", "Etag", "Vary"}));
}

// Does to its response's lines what it was made with, then writes "ok".
class LinesHandler : public RequestHandler {
 public:
  explicit LinesHandler(std::function<void(RequestHandler&)> act) : act_(std::move(act)) {}
  Task<void> get() override {
    act_(*this);
    write("ok");
    co_return;
  }

 private:
  std::function<void(RequestHandler&)> act_;
};

// The response's lines as "Name: value", in order, without the Date's and Etag's values.
std::vector<std::string> line_texts(const HTTPHeaders& headers) {
  std::vector<std::string> out;
  for (HeaderField f : headers) {
    const bool varies = f.name == "Date" || f.name == "Etag";
    out.push_back(std::string(f.name) + ": " + (varies ? "*" : std::string(f.value)));
  }
  return out;
}

// Server, Content-Type and Date come first in every response, as clear() made them,
// whatever the handler does to them or around them. (The web layer copies them in only
// when the handler touches a line other than Content-Type, or at finish().)
TEST(Web, TheDefaultLinesComeFirstWhateverTheHandlerDoes) {
  using Lines = std::vector<std::string>;
  auto serve = [](std::function<void(RequestHandler&)> act) {
    Application app({{"/", handler<LinesHandler>(std::move(act))}});
    return fetch(app, "GET", "/");
  };
  Response r = serve([](RequestHandler& h) { h.set_header("Content-Type", "text/plain"); });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "Content-Type: text/plain", "Date: *", "Etag: *",
                                          "Content-Length: 2"}));
  r = serve([](RequestHandler& h) {
    h.set_header("X-A", "1");
    h.set_header("Content-Type", "text/plain");
  });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "Content-Type: text/plain", "Date: *", "X-A: 1", "Etag: *",
                                          "Content-Length: 2"}));
  r = serve([](RequestHandler& h) { h.add_header("Content-Type", "text/plain"); });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "Content-Type: text/html; charset=UTF-8", "Date: *",
                                          "Content-Type: text/plain", "Etag: *", "Content-Length: 2"}));
  r = serve([](RequestHandler& h) { h.clear_header("Content-Type"); });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "Date: *", "Etag: *", "Content-Length: 2"}));
  // Another spelling of the name replaces the line where it stands.
  r = serve([](RequestHandler& h) { h.set_header("content-type", "text/plain"); });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "content-type: text/plain", "Date: *", "Etag: *",
                                          "Content-Length: 2"}));
  // A tag set before the lines were copied in is kept once they are (finish() adds none
  // to a 201).
  r = serve([](RequestHandler& h) {
    h.set_status(201);
    h.set_header("Content-Type", "text/plain");
    h.set_etag_header();
  });
  EXPECT_EQ(line_texts(r.headers), (Lines{"Server: Squall", "Content-Type: text/plain", "Date: *", "Etag: *",
                                          "Content-Length: 2"}));
  // What the handler reads back is what will be sent.
  Lines seen;
  r = serve([&seen](RequestHandler& h) {
    h.set_header("Content-Type", "text/csv");
    seen = line_texts(h.response_headers());
  });
  EXPECT_EQ(seen, (Lines{"Server: Squall", "Content-Type: text/csv", "Date: *"}));
  // A type longer than the room kept for one, then types in turn: each response has its own.
  const std::string long_type = "application/vnd.example.a-rather-long-media-type+json; charset=UTF-8";
  for (std::string type : {long_type, std::string("a/1"), std::string("a/2"), std::string("a/3"), std::string("a/4"),
                           std::string("a/5"), std::string("a/1"), long_type}) {
    r = serve([type](RequestHandler& h) { h.set_header("Content-Type", type); });
    EXPECT_EQ(r.header("Content-Type"), type);
    EXPECT_EQ(r.headers.count("Content-Type"), 1u);
    EXPECT_EQ(r.headers.count("Server"), 1u);
    EXPECT_EQ(r.headers.count("Date"), 1u);
  }
}

class CookieHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string out;
    for (const auto& [name, value] : request().cookies()) out += name + "=" + value + "\n";
    out += "a?" + get_cookie("a", "-") + "\n";
    write(out);
    CookieOptions opts;
    opts.domain = "example.com";
    opts.max_age = 60;
    opts.httponly = true;
    opts.secure = true;
    opts.samesite = "Lax";
    set_cookie("session", "abc", opts);
    set_cookie("spaced", "x;y");
    clear_cookie("old");
    EXPECT_THROW(set_cookie("bad", "a\r\nb"), std::invalid_argument);
    co_return;
  }
};

TEST(Web, CookiesAreParsedAndSet) {
  Application app({{"/cookie", handler<CookieHandler>()}});
  HTTPHeaders headers{{"Cookie", "a=1; b=\"quoted value\"; bad name=x; a=2"}};
  Response r = fetch(app, "GET", "/cookie", headers);
  EXPECT_EQ(r.body, "a=2\nb=quoted value\na?2\n");
  std::vector<std::string_view> set = r.headers.get_list("Set-Cookie");
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set[0], "session=abc; Domain=example.com; HttpOnly; Max-Age=60; Path=/; SameSite=Lax; Secure");
  EXPECT_EQ(set[1], "spaced=\"x\\073y\"; Path=/");
  EXPECT_TRUE(set[2].starts_with("old=; expires=")) << set[2];
  EXPECT_TRUE(set[2].ends_with(" GMT; Path=/")) << set[2];
}

class StatusHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_status(std::stoi(path_args()[0]));
    co_return;
  }
};

TEST(Web, NoBodyAndNoLengthFor204And304) {
  Application app({{"/status/([0-9]{3})", handler<StatusHandler>()}});
  Response r = fetch(app, "GET", "/status/204");
  EXPECT_EQ(r.code, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(r.headers.contains("Content-Length"));
  EXPECT_FALSE(r.headers.contains("Content-Type"));
  Response custom = fetch(app, "GET", "/status/299");
  EXPECT_EQ(custom.code, 299);
  EXPECT_EQ(custom.reason, "Unknown");
}

TEST(Web, HeadSendsHeadersOnly) {
  class Both : public TextHandler {
   public:
    Both() : TextHandler("OK") {}
    Task<void> head() override { return get(); }
  };
  Application app({{"/", handler<Both>()}});
  Response r = fetch(app, "HEAD", "/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("Content-Length"), "2");
}

class StreamingHandler : public RequestHandler {
 public:
  bool stream_request_body() const override { return true; }
  Task<void> prepare() override {
    prepared_ = true;
    co_return;
  }
  Task<void> data_received(std::string chunk) override {
    EXPECT_TRUE(prepared_);
    co_await sleep(1ms);  // a slow consumer: the connection waits (flow control)
    pieces_.push_back(std::move(chunk));
  }
  Task<void> put() override {
    std::string out = "body=" + request().body + ";";
    for (const auto& p : pieces_) out += "[" + p + "]";
    write(out);
    co_return;
  }

 private:
  bool prepared_ = false;
  std::vector<std::string> pieces_;
};

TEST(Web, StreamingHandlerGetsBodyPieceByPiece) {
  Application app({{"/upload", handler<StreamingHandler>()}});
  Response r = fetch(app, "PUT", "/upload", {}, {"abc", "de", "f"});
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "body=;[abc][de][f]");
}

class FlushingHandler : public RequestHandler {
 public:
  Task<void> get() override {
    for (int i = 0; i < 3; ++i) {
      write("chunk" + std::to_string(i));
      co_await flush();
    }
  }
};

TEST(Web, FlushStreamsPiecesWithoutContentLength) {
  Application app({{"/stream", handler<FlushingHandler>()}});
  Response r = fetch(app, "GET", "/stream");
  EXPECT_EQ(r.code, 200);
  EXPECT_FALSE(r.headers.contains("Content-Length"));
  EXPECT_EQ(r.pieces, (std::vector<std::string>{"chunk0", "chunk1", "chunk2"}));
  EXPECT_TRUE(r.finished);
}

// A handler that drops the default Server and Date lines and frames its body itself.
class OwnFramingHandler : public RequestHandler {
 public:
  Task<void> get() override {
    clear_header("Server");
    clear_header("Date");
    set_header("Transfer-Encoding", "chunked");
    write("2\r\nhi\r\n0\r\n\r\n");
    co_return;
  }
};

// finish() notes the framing of the head it writes for the connection (the body's
// length it added, and which of Transfer-Encoding, Date, Server are set) — what the
// lines say, as FakeConnection checks for every response. It notes nothing when it does
// not know the length: the handler set Content-Length itself, gzip changed the body, or
// flush() wrote the head before finish().
TEST(Web, FinishNotesTheFramingOfTheHeadItWrites) {
  class GetAndHead : public TextHandler {
   public:
    GetAndHead() : TextHandler("hello") {}
    Task<void> head() override { return get(); }
  };
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/text", handler<GetAndHead>()},
                   {"/own", handler<OwnLinesHandler>()},
                   {"/own-framing", handler<OwnFramingHandler>()},
                   {"/stream", handler<FlushingHandler>()},
                   {"/gzip", handler<BigTextHandler>(size_t{5000})},
                   {"/status/([0-9]{3})", handler<StatusHandler>()}},
                  settings);
  auto noted = [](const Response& r) { return r.headers.noted_framing(); };
  Response text = fetch(app, "GET", "/text");
  ASSERT_NE(noted(text), nullptr);
  EXPECT_EQ(*noted(text), (FramingLines{5, true, false, true, true}));
  Response head = fetch(app, "HEAD", "/text");
  EXPECT_EQ(head.code, 200);
  EXPECT_EQ(head.body, "");
  ASSERT_NE(noted(head), nullptr);
  EXPECT_EQ(*noted(head), (FramingLines{5, true, false, true, true}));  // the GET's length
  HTTPHeaders same{{"If-None-Match", text.header("Etag")}};
  Response not_modified = fetch(app, "GET", "/text", same);
  EXPECT_EQ(not_modified.code, 304);
  ASSERT_NE(noted(not_modified), nullptr);
  EXPECT_EQ(*noted(not_modified), (FramingLines{0, false, false, true, true}));
  Response no_content = fetch(app, "GET", "/status/204");
  ASSERT_NE(noted(no_content), nullptr);
  EXPECT_FALSE(noted(no_content)->has_content_length);
  Response own_framing = fetch(app, "GET", "/own-framing");
  ASSERT_NE(noted(own_framing), nullptr);
  EXPECT_EQ(*noted(own_framing), (FramingLines{12, true, true, false, false}));
  EXPECT_FALSE(own_framing.headers.contains("Server"));  // the defaults it cleared stay cleared
  EXPECT_FALSE(own_framing.headers.contains("Date"));
  EXPECT_EQ(own_framing.header("Content-Type"), "text/html; charset=UTF-8");
  EXPECT_EQ(noted(fetch(app, "GET", "/own")), nullptr);
  EXPECT_EQ(noted(fetch(app, "GET", "/stream")), nullptr);
  HTTPHeaders accept{{"Accept-Encoding", "gzip"}};
  Response gzipped = fetch(app, "GET", "/gzip", accept);
  EXPECT_EQ(gzipped.header("Content-Encoding"), "gzip");
  EXPECT_EQ(noted(gzipped), nullptr);
}

class SlowHandler : public RequestHandler {
 public:
  Task<void> get() override {
    co_await sleep(5ms);
    write("late");
  }
};

TEST(Web, AsyncHandlerFinishesAutomatically) {
  Application app({{"/slow", handler<SlowHandler>()}});
  Response r = fetch(app, "GET", "/slow");
  EXPECT_EQ(r.body, "late");
  EXPECT_TRUE(r.finished);
}

// Writes its lifecycle into a shared list; its GET finishes the response, then waits on
// `gate` (a coroutine outliving finish()) and reads its request again.
class LifecycleHandler : public RequestHandler {
 public:
  using Events = std::vector<std::string>;
  LifecycleHandler(std::shared_ptr<Events> events, std::shared_ptr<Future<void>> gate)
      : events_(std::move(events)), gate_(std::move(gate)) {}
  ~LifecycleHandler() override { events_->push_back("destroyed " + path_); }
  Task<void> prepare() override {
    path_ = request().path;
    events_->push_back("prepare " + path_);
    co_return;
  }
  Task<void> get() override {
    events_->push_back("get " + path_);
    co_await finish(request().path + "?" + request().query);
    events_->push_back("finished " + path_);
    co_await *gate_;
    // The request is the handler's until the handler goes, response sent or not.
    events_->push_back("after " + request().path + " " + get_argument("n") + " " + request().headers.get("X-Id", "") +
                       " " + (request().connection ? "connected" : "no connection"));
  }
  void on_finish() override { events_->push_back("on_finish " + path_); }

 private:
  std::shared_ptr<Events> events_;
  std::shared_ptr<Future<void>> gate_;
  std::string path_;
};

TEST(Web, AHandlerOutlivesFinishAndItsDelegateWithItsRequest) {
  auto events = std::make_shared<LifecycleHandler::Events>();
  auto gate = std::make_shared<Future<void>>();
  Application app({{"/life", handler<LifecycleHandler>(events, gate)}});
  Response r = fetch(app, "GET", "/life?n=1", HTTPHeaders{{"X-Id", "one"}});  // the delegate is gone after it
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "/life?n=1");
  EXPECT_EQ(*events, (LifecycleHandler::Events{"prepare /life", "get /life", "on_finish /life", "finished /life"}));
  IOLoop::current().run_sync(
      [&]() -> Task<void> {
        gate->set_result();
        co_await sleep(1ms);
      },
      5s);
  EXPECT_EQ(*events, (LifecycleHandler::Events{"prepare /life", "get /life", "on_finish /life", "finished /life",
                                               "after /life 1 one no connection", "destroyed /life"}));
}

// Two requests in flight at once, on two connections: each handler keeps its own request,
// and each ends (is destroyed) when its own coroutine does, in whatever order.
TEST(Web, TwoRequestsInFlightOnTwoConnectionsKeepTheirOwnRequests) {
  auto events = std::make_shared<LifecycleHandler::Events>();
  auto first_gate = std::make_shared<Future<void>>();
  auto second_gate = std::make_shared<Future<void>>();
  Application app({{"/a", handler<LifecycleHandler>(events, first_gate)},
                   {"/b", handler<LifecycleHandler>(events, second_gate)}});
  FakeConnection first_conn, second_conn;
  std::unique_ptr<HTTPMessageDelegate> first = app.start_request(RequestContext{"10.0.0.1", "http"}, first_conn);
  std::unique_ptr<HTTPMessageDelegate> second = app.start_request(RequestContext{"10.0.0.2", "http"}, second_conn);
  HTTPHeaders first_headers{{"X-Id", "first"}};
  HTTPHeaders second_headers{{"X-Id", "second"}};
  IOLoop::current().run_sync(
      [&]() -> Task<void> {
        EXPECT_FALSE(first->headers_received(RequestStartLine{"GET", "/a?n=1", "HTTP/1.1"}, first_headers));
        EXPECT_FALSE(second->headers_received(RequestStartLine{"GET", "/b?n=2", "HTTP/1.1"}, second_headers));
        first->finish();
        second->finish();
        second_gate->set_result();
        co_await sleep(1ms);
        EXPECT_EQ(events->back(), "after /b 2 second connected");
        first_gate->set_result();
        co_await sleep(1ms);
        EXPECT_EQ(events->back(), "after /a 1 first connected");
      },
      5s);
  EXPECT_EQ(first_conn.body, "/a?n=1");
  EXPECT_EQ(second_conn.body, "/b?n=2");
  // Each handler goes with the last of its owners: here its delegate.
  second.reset();
  EXPECT_EQ(events->back(), "destroyed /b");
  first.reset();
  EXPECT_EQ(events->back(), "destroyed /a");
}

// The next request gets a fresh handler and request: nothing of the previous one's
// arguments or body.
TEST(Web, EachRequestGetsAFreshHandlerAndRequest) {
  Application app({{"/args", handler<ArgsHandler>()}});
  Response with = fetch_body(app, "POST", "/args?q=1", "application/x-www-form-urlencoded", "b=2");
  EXPECT_EQ(with.body, R"({"q":["1"],"b":["2"]})");
  Response without = fetch(app, "GET", "/args");
  EXPECT_EQ(without.body, "{}");
  Response other = fetch(app, "GET", "/args?r=3");
  EXPECT_EQ(other.body, R"({"r":["3"]})");
}

TEST(Web, AccessLogLevelsFollowStatus) {
  Application app({{"/ok", handler<TextHandler>(std::string("x"))},
                   {"/error", handler<ThrowingHandler>()}});
  LogLevel before = log_level();
  set_log_level(LogLevel::info);
  testing::internal::CaptureStderr();
  fetch(app, "GET", "/ok?q=1");
  fetch(app, "GET", "/missing");
  fetch(app, "GET", "/error");
  std::string log = testing::internal::GetCapturedStderr();
  set_log_level(before);
  EXPECT_TRUE(RE2::PartialMatch(log, R"(\[I [^\]]* access\] 200 GET /ok\?q=1 \(10\.0\.0\.7\) \d+\.\d\dms)")) << log;
  EXPECT_TRUE(RE2::PartialMatch(log, R"(\[W [^\]]* access\] 404 GET /missing \(10\.0\.0\.7\) \d+\.\d\dms)")) << log;
  EXPECT_TRUE(RE2::PartialMatch(log, R"(\[E [^\]]* access\] 500 GET /error \(10\.0\.0\.7\) \d+\.\d\dms)")) << log;
}

class CloseAwareHandler : public RequestHandler {
 public:
  explicit CloseAwareHandler(std::shared_ptr<int> closes) : closes_(std::move(closes)) {}
  bool stream_request_body() const override { return true; }
  void on_connection_close() override { ++*closes_; }
  Task<void> put() override { co_return; }

 private:
  std::shared_ptr<int> closes_;
};

TEST(Web, ConnectionCloseMidBodyReachesStreamingHandler) {
  auto closes = std::make_shared<int>(0);
  Application app({{"/upload", handler<CloseAwareHandler>(closes)}});
  FakeConnection conn;
  auto delegate = app.start_request(RequestContext{"10.0.0.7", "http"}, conn);
  HTTPHeaders headers;
  IOLoop::current().run_sync(
      [&]() -> Task<void> {
        FlowControl wait = delegate->headers_received(RequestStartLine{"PUT", "/upload", "HTTP/1.1"}, headers);
        if (wait) co_await *wait;
        delegate->data_received("part");
        delegate->on_connection_close();
        co_await sleep(2ms);
      },
      5s);
  delegate.reset();
  EXPECT_EQ(*closes, 1);
  EXPECT_FALSE(conn.finished);
  EXPECT_EQ(conn.head_count, 0);
}

TEST(Web, ReverseUrl) {
  Application app({{"/path/([^/]+)/([0-9]+)", handler<PathArgsHandler>(), "path"}});
  EXPECT_EQ(app.reverse_url("path", {"a b", "1"}), "/path/a%20b/1");
  EXPECT_THROW(app.reverse_url("nope"), std::out_of_range);
}

TEST(Web, AbsoluteFormTargetIsRoutedByItsPath) {
  Application app({{"/plaintext", handler<TextHandler>(std::string("Hello"))}});
  HTTPHeaders other_host{{"Host", "other.example"}};
  Response r = fetch(app, "GET", "http://127.0.0.1/plaintext", other_host);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello");
  EXPECT_EQ(fetch(app, "GET", "http://127.0.0.1/nothing").code, 404);
}

TEST(Web, AbsoluteFormTargetGivesPathQueryAndHost) {
  HTTPHeaders headers{{"Host", "other.example"}};
  HTTPServerRequest request(RequestStartLine{"GET", "http://user@Example.COM:8080/p/q?x=1", "HTTP/1.1"}, headers,
                            RequestContext{"1.2.3.4", "http"});
  EXPECT_EQ(request.uri, "/p/q?x=1");
  EXPECT_EQ(request.path, "/p/q");
  EXPECT_EQ(request.query, "x=1");
  EXPECT_EQ(request.host, "Example.COM:8080");
  EXPECT_EQ(request.host_name, "example.com");
  EXPECT_EQ(request.full_url(), "http://Example.COM:8080/p/q?x=1");

  HTTPServerRequest bare(RequestStartLine{"GET", "https://h.example?y", "HTTP/1.1"}, headers, RequestContext{});
  EXPECT_EQ(bare.path, "/");
  EXPECT_EQ(bare.query, "y");
  EXPECT_EQ(bare.host, "h.example");
}

TEST(Web, RequestFieldsFromStartLineAndHeaders) {
  HTTPHeaders headers{{"Host", "Example.COM:8080"}};
  HTTPServerRequest request(RequestStartLine{"GET", "/p/q?x=1&y", "HTTP/1.1"}, headers, RequestContext{"1.2.3.4", "https"});
  EXPECT_EQ(request.path, "/p/q");
  EXPECT_EQ(request.query, "x=1&y");
  EXPECT_EQ(request.host, "Example.COM:8080");
  EXPECT_EQ(request.host_name, "example.com");
  EXPECT_EQ(request.full_url(), "https://Example.COM:8080/p/q?x=1&y");
  EXPECT_EQ(request.query_arguments.get_list("y"), std::vector<std::string>{""});
  EXPECT_GE(request.request_time(), 0.0);
}

// Tornado 6.2 never fixes a request's finish time: request_time() reads the clock when
// asked, after finish() too. RequestHandler::finish() notes none either (a clock read per
// response saved); finish_timing() is the caller's choice.
class TimedAfterFinishHandler : public RequestHandler {
 public:
  explicit TimedAfterFinishHandler(std::shared_ptr<std::pair<double, double>> times) : times_(std::move(times)) {}
  Task<void> get() override {
    co_await finish("done");
    times_->first = request().request_time();
    co_await sleep(20ms);
    times_->second = request().request_time();
  }

 private:
  std::shared_ptr<std::pair<double, double>> times_;
};

TEST(Web, RequestTimeKeepsCountingAfterFinishAsTornados) {
  auto times = std::make_shared<std::pair<double, double>>(-1, -1);
  Application app({{"/t", handler<TimedAfterFinishHandler>(times)}});
  Response r = fetch(app, "GET", "/t");
  EXPECT_EQ(r.body, "done");
  IOLoop::current().run_sync([]() -> Task<void> { co_await sleep(50ms); }, 5s);
  ASSERT_GE(times->first, 0.0);
  EXPECT_GE(times->second - times->first, 0.019);
}

// host_name is the Host without a valid port (as split_host_and_port cuts it), with ASCII
// letters lower-cased eight bytes at a time and the rest byte by byte.
TEST(Web, HostNameDropsAValidPortAndLowerCasesAsciiOnly) {
  auto host_name_of = [](std::string host) {
    HTTPHeaders headers{{"Host", host}};
    return HTTPServerRequest(RequestStartLine{"GET", "/", "HTTP/1.1"}, headers, RequestContext{}).host_name;
  };
  EXPECT_EQ(host_name_of("WWW.Example-Host.ORG:65535"), "www.example-host.org");
  EXPECT_EQ(host_name_of("AZaz@[`{Z"), "azaz@[`{z");  // the bytes around 'A'..'Z' stay
  EXPECT_EQ(host_name_of("ÄBC-\xC3\x84XYZW.example"), "Äbc-\xC3\x84xyzw.example");  // UTF-8 bytes kept
  EXPECT_EQ(host_name_of("[::1]:8080"), "[::1]");
  EXPECT_EQ(host_name_of("h:0"), "h");
  EXPECT_EQ(host_name_of("H:65536"), "h:65536");  // not a port
  EXPECT_EQ(host_name_of("H:123456"), "h:123456");
  EXPECT_EQ(host_name_of("H:8a"), "h:8a");
  EXPECT_EQ(host_name_of("H:"), "h:");
  EXPECT_EQ(host_name_of(":80"), ":80");  // the ':' may not be the first byte
  EXPECT_EQ(host_name_of("a:b:80"), "a:b");
  EXPECT_EQ(host_name_of("h:00080"), "h");  // five digits, leading zeros: 80
  EXPECT_EQ(host_name_of("h:99999"), "h:99999");
  EXPECT_EQ(host_name_of("1:2"), "1");
  EXPECT_EQ(host_name_of("12345"), "12345");  // digits without a ':'
  EXPECT_EQ(host_name_of("h:1234567"), "h:1234567");
}

// A request made while the loop runs starts at the time of the iteration that read it
// (IOLoop::cached_time): what it waited in that iteration counts.
TEST(Web, ARequestStartsAtItsLoopIterationsTime) {
  IOLoop loop;
  double seconds = -1;
  loop.add_callback([&] {
    const TimePoint spin_until = loop.time() + 3ms;
    while (loop.time() < spin_until) {
    }
    HTTPServerRequest request(RequestStartLine{"GET", "/", "HTTP/1.1"}, HTTPHeaders{}, RequestContext{});
    request.finish_timing();
    seconds = request.request_time();
    loop.stop();
  });
  loop.start();
  EXPECT_GE(seconds, 0.003);
}

// The request keeps one monotonic start; its wall-clock start is derived when asked and
// request_time() counts until finish_timing(), then stays.
TEST(Web, RequestTimeAndStartTime) {
  const auto before = std::chrono::system_clock::now();
  HTTPServerRequest request(RequestStartLine{"GET", "/", "HTTP/1.1"}, HTTPHeaders{}, RequestContext{});
  const auto after = std::chrono::system_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto started = request.start_time();
  // Derived from the monotonic clock: within a few milliseconds of when it was made.
  EXPECT_GE(started, before - std::chrono::milliseconds(5));
  EXPECT_LE(started, after + std::chrono::milliseconds(5));
  const double running = request.request_time();
  EXPECT_GE(running, 0.019);
  request.finish_timing();
  const double finished = request.request_time();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(request.request_time(), finished);
  EXPECT_GE(finished, running);
}

// ---- through a real HTTPServer on 127.0.0.1 ------------------------------------------------

// Sends `request` on a blocking socket and reads until the server closes.
std::string raw_request(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) reply.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return reply;
}

std::string run_command(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// ---- bounded memory: flushed pieces to a slow client, bodies held whole ---------------

// Writes `total` bytes in 64 KiB pieces, awaiting flush() after each.
class PiecesHandler : public RequestHandler {
 public:
  PiecesHandler(size_t total, std::shared_ptr<size_t> max_queued, std::shared_ptr<size_t> written = nullptr)
      : total_(total), max_queued_(std::move(max_queued)), written_(std::move(written)) {}
  Task<void> get() override {
    set_header("Content-Length", static_cast<int64_t>(total_));
    const std::string piece(64 * 1024, 'p');
    for (size_t sent = 0; sent < total_; sent += piece.size()) {
      write(std::string_view(piece).substr(0, std::min(piece.size(), total_ - sent)));
      if (written_) *written_ = sent + std::min(piece.size(), total_ - sent);
      co_await flush();
      if (auto* http1 = dynamic_cast<HTTP1Connection*>(request().connection)) {
        *max_queued_ = std::max(*max_queued_, http1->stream().write_buffer_size());
      }
    }
  }

 private:
  size_t total_;
  std::shared_ptr<size_t> max_queued_;
  std::shared_ptr<size_t> written_;
};

// Echoes the length of the body it received (whole, or streamed).
class LengthHandler : public RequestHandler {
 public:
  explicit LengthHandler(bool streaming) : streaming_(streaming) {}
  bool stream_request_body() const override { return streaming_; }
  Task<void> data_received(std::string chunk) override {
    streamed_ += chunk.size();
    co_return;
  }
  Task<void> post() override {
    write(std::to_string(streaming_ ? streamed_ : request().body.size()));
    co_return;
  }

 private:
  bool streaming_;
  size_t streamed_ = 0;
};

// An Application served over a socketpair whose client end the test drives by hand.
class WebFlowTest : public ::testing::Test {
 protected:
  void start(std::vector<URLSpec> routes, HTTPServerOptions options = {}) {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    int size = 16 * 1024;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    app = std::make_unique<Application>(std::move(routes), ApplicationSettings{.log_requests = false});
    server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(fds[0]), SocketAddress{}, options);
    serving.emplace(server->serve(*app));
  }
  void send(std::string_view bytes) { ASSERT_EQ(::send(fds[1], bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size())); }
  // Reads until `until` holds (bounded).
  std::string read_until(std::function<bool(const std::string&)> until) {
    std::string out;
    loop.run_sync(
        [&]() -> Task<void> {
          char buf[64 * 1024];
          while (!until(out)) {
            ssize_t n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) out.append(buf, size_t(n));
            if (n == 0) break;
            co_await sleep(1ms);
          }
        },
        10s);
    return out;
  }
  void TearDown() override {
    if (serving && !serving->done()) {
      server->close().mark_retrieved();
      loop.run_sync([&] { return serving->future(); }, 5s);
    }
    if (fds[1] >= 0) ::close(fds[1]);
  }

  IOLoop& loop = IOLoop::current();  // the web layer's futures belong to the current loop
  int fds[2] = {-1, -1};
  std::unique_ptr<Application> app;
  std::unique_ptr<HTTPServerConnection> server;
  std::optional<Task<void>> serving;
};

TEST_F(WebFlowTest, LargeAnswerToAClientThatDoesNotReadKeepsTheQueuedOutputBounded) {
  constexpr size_t kTotal = 8 * 1024 * 1024;
  auto max_queued = std::make_shared<size_t>(0);
  HTTPServerOptions options;
  options.params.output_high_water = 128 * 1024;
  start({{"/big", handler<PiecesHandler>(kTotal, max_queued)}}, options);
  send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
  loop.run_sync([] { return sleep(50ms); });
  // The handler waits in flush(): the stream holds the mark and at most one piece more.
  EXPECT_LE(server->stream().write_buffer_size(), 128u * 1024 + 64 * 1024);
  EXPECT_GT(server->stream().write_buffer_size(), 0u);
  size_t body_bytes = 0;
  std::string all = read_until([&](const std::string& out) {
    size_t head_end = out.find("\r\n\r\n");
    body_bytes = head_end == std::string::npos ? 0 : out.size() - head_end - 4;
    return body_bytes >= kTotal;
  });
  EXPECT_EQ(body_bytes, kTotal);
  EXPECT_EQ(static_cast<size_t>(std::count(all.begin() + static_cast<std::ptrdiff_t>(all.size() - body_bytes), all.end(), 'p')),
            kTotal);
  EXPECT_NE(all.find("Content-Length: 8388608\r\n"), std::string::npos);
  EXPECT_EQ(all.find("Etag"), std::string::npos) << "a flushed answer has no ETag";
  EXPECT_LE(*max_queued, 128u * 1024 + 64 * 1024);
}

TEST_F(WebFlowTest, BodyAboveTheBufferedLimitIs413BeforeItIsRead) {
  HTTPServerOptions options;
  options.params.max_buffered_body_size = 1000;
  start({{"/whole", handler<LengthHandler>(false)}}, options);
  send("POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\nonly the start");
  std::string answer = read_until([](const std::string& out) { return out.find("\r\n\r\n") != std::string::npos; });
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n")) << answer;
}

TEST_F(WebFlowTest, StreamingHandlersAreBoundedByMaxBodySizeInstead) {
  HTTPServerOptions options;
  options.params.max_buffered_body_size = 1000;
  start({{"/streamed", handler<LengthHandler>(true)}, {"/whole", handler<LengthHandler>(false)}}, options);
  std::string body(5000, 'b');
  send("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body);
  send("POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'w'));
  std::string answers = read_until([](const std::string& out) { return out.ends_with("\r\n\r\n1000"); });
  EXPECT_TRUE(answers.starts_with("HTTP/1.1 200 OK\r\n")) << answers;
  EXPECT_NE(answers.find("\r\n\r\n5000HTTP/1.1 200 OK\r\n"), std::string::npos) << answers;
}

// Answers "/now" at once; "/wait" waits until the test releases it. Counts the
// on_connection_close calls it gets.
class LeaveAwareHandler : public RequestHandler {
 public:
  LeaveAwareHandler(std::shared_ptr<int> closes, Future<void> release) : closes_(std::move(closes)), release_(std::move(release)) {}
  void on_connection_close() override { ++*closes_; }
  Task<void> get() override {
    if (request().path == "/wait") co_await release_;
    write("done");
  }

 private:
  std::shared_ptr<int> closes_;
  Future<void> release_;
};

// A handler still running when its client leaves hears of it while it waits, also after
// an earlier request on the same connection that was answered at once (and a handler
// that has answered hears nothing).
TEST_F(WebFlowTest, ClientLeavingReachesAWaitingHandlerAfterAnAnsweredOne) {
  auto closes = std::make_shared<int>(0);
  Future<void> release;
  start({{"/(now|wait)", handler<LeaveAwareHandler>(closes, release)}});
  send("GET /now HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string first = read_until([](const std::string& out) { return out.ends_with("\r\n\r\ndone"); });
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;
  EXPECT_EQ(*closes, 0);
  send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
  loop.run_sync([] { return sleep(20ms); });
  EXPECT_EQ(*closes, 0) << "the client is still there";
  ::close(fds[1]);
  fds[1] = -1;
  loop.run_sync(
      [&]() -> Task<void> {
        for (int i = 0; i < 1000 && *closes == 0; ++i) co_await sleep(1ms);
      },
      5s);
  EXPECT_EQ(*closes, 1);
  release.set_result();  // the handler ends, its answer going nowhere
  loop.run_sync([] { return sleep(5ms); });
  EXPECT_EQ(*closes, 1);
}

TEST(WebIntegration, AsyncStreamingCallbackThrottlesAFastServer) {
  constexpr size_t kTotal = 32 * 1024 * 1024;
  auto written = std::make_shared<size_t>(0);
  Application app({{"/big", handler<PiecesHandler>(kTotal, std::make_shared<size_t>(0), written)}},
                  ApplicationSettings{.log_requests = false});
  IOLoop& loop = IOLoop::current();
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  AsyncHTTPClient client;
  HTTPRequest request("http://127.0.0.1:" + std::to_string(server.ports().at(0)) + "/big");
  request.request_timeout = 20s;
  std::optional<Future<void>> consumer;  // the piece being consumed, completed by the test
  size_t received = 0;
  request.async_streaming_callback = [&](std::string_view piece) {
    received += piece.size();
    consumer.emplace();
    return *consumer;
  };
  Future<HTTPResponse> response = client.fetch(request);
  loop.run_sync([] { return sleep(200ms); });
  const size_t written_while_held = *written;
  EXPECT_LE(received, 64u * 1024) << "one piece, then the client waits for its consumer";
  EXPECT_LT(written_while_held, kTotal / 2) << "the server was held back by the client's flow control";
  loop.run_sync(
      [&]() -> Task<void> {
        while (!response.done()) {
          if (consumer && !consumer->done()) consumer->set_result();
          co_await moment();
        }
      },
      20s);
  EXPECT_EQ(response.result().code, 200);
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(response.result().body.empty());
  // The pooled keep-alive connection must end before the application does.
  server.stop();
  client.close();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
}

TEST(WebIntegration, AsyncStreamingCallbackFailureFailsTheFetch) {
  Application app({{"/big", handler<PiecesHandler>(1024 * 1024, std::make_shared<size_t>(0))}},
                  ApplicationSettings{.log_requests = false});
  IOLoop& loop = IOLoop::current();
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  AsyncHTTPClient client;
  HTTPRequest request("http://127.0.0.1:" + std::to_string(server.ports().at(0)) + "/big");
  request.async_streaming_callback = [](std::string_view) {
    Future<void> failed;
    failed.set_exception(std::runtime_error("disk full"));
    return failed;
  };
  try {
    loop.run_sync([&] { return client.fetch(request); }, 5s);
    ADD_FAILURE() << "the fetch succeeded";
  } catch (const HTTPClientError& e) {
    EXPECT_EQ(e.code(), 599);
    EXPECT_NE(std::string(e.what()).find("disk full"), std::string::npos) << e.what();
  }
  server.stop();
  client.close();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
}

TEST(WebIntegration, ServesRawSocketAndCurlOverHTTPServer) {
  Application app({{"/", handler<TextHandler>(std::string("OK"))},
                   {"/json", handler<JsonHandler>()},
                   {"/slow", handler<SlowHandler>()},
                   {"/stream", handler<FlushingHandler>()}});
  IOLoop& loop = IOLoop::current();
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  uint16_t port = server.ports().at(0);
  std::string root, stream, missing, curl_json;
  std::thread client([&] {
    root = raw_request(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream = raw_request(port, "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    missing = raw_request(port, "GET /missing HTTP/1.0\r\n\r\n");
    if (::access("/usr/bin/curl", X_OK) == 0) {
      curl_json = run_command("/usr/bin/curl -s -i --max-time 5 http://127.0.0.1:" + std::to_string(port) + "/json");
    }
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  // Connections the client left open (curl's keep-alive, closes not yet read) end
  // before the application does: else the next test's loop serves their close.
  server.stop();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
  EXPECT_TRUE(root.starts_with("HTTP/1.1 200 OK\r\n")) << root;
  EXPECT_TRUE(root.ends_with("\r\n\r\nOK")) << root;
  EXPECT_NE(stream.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << stream;
  EXPECT_TRUE(stream.ends_with("6\r\nchunk0\r\n6\r\nchunk1\r\n6\r\nchunk2\r\n0\r\n\r\n")) << stream;
  EXPECT_TRUE(missing.starts_with("HTTP/1.1 404 Not Found\r\n")) << missing;
  if (::access("/usr/bin/curl", X_OK) == 0) {
    EXPECT_NE(curl_json.find("Content-Type: application/json; charset=UTF-8"), std::string::npos) << curl_json;
    EXPECT_NE(curl_json.find(R"("message":"Hello, World!")"), std::string::npos) << curl_json;
  }
}

// A handler that types its answer and adds a line of its own (and, if asked, its own
// Content-Length), as most real handlers do.
class TypedTextHandler : public RequestHandler {
 public:
  explicit TypedTextHandler(bool own_length) : own_length_(own_length) {}
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    add_header("X-Custom", "1");
    if (own_length_) set_header("Content-Length", "5");
    write("hello");
    co_return;
  }

 private:
  bool own_length_;
};

// The head on the wire, line by line and in Tornado's order: the default lines (Server,
// Content-Type, Date) with the handler's type in place, the handler's own, then what
// finish() adds (Etag, Content-Length unless the handler set one), the Vary of
// compress_response, and the connection's Connection: close last — for pipelined answers
// (written as one batch) as for the last one.
TEST(WebIntegration, PipelinedResponseHeadsCarryEveryLineInOrder) {
  ApplicationSettings settings;
  settings.compress_response = true;
  Application app({{"/a", handler<TypedTextHandler>(false)}, {"/own", handler<TypedTextHandler>(true)}}, settings);
  IOLoop& loop = IOLoop::current();
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  const uint16_t port = server.ports().at(0);
  std::string reply;
  std::thread client([&] {
    reply = raw_request(port,
                        "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /own HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
                        "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  // Its connections end before the application does (as in ServesRawSocketAndCurlOverHTTPServer).
  server.stop();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
  RE2::GlobalReplace(&reply, R"(Date: [^\r]*)", "Date: D");
  RE2::GlobalReplace(&reply, R"(Etag: "[A-Za-z0-9_-]{11}")", "Etag: E");
  const std::string start = "HTTP/1.1 200 OK\r\nServer: Squall\r\nContent-Type: text/plain\r\nDate: D\r\nX-Custom: 1\r\n";
  const std::string a = start + "Etag: E\r\nContent-Length: 5\r\nVary: Accept-Encoding\r\n";
  const std::string own = start + "Content-Length: 5\r\nEtag: E\r\nVary: Accept-Encoding\r\n";
  EXPECT_EQ(reply, a + "\r\nhello" + own + "\r\nhello" + a + "Connection: close\r\n\r\nhello");
}

// Pipelined answers collect in one buffer up to a bound and go out in one write: a batch
// past the bound (and past the room the buffer keeps between batches) still arrives
// whole and in order, small answers and large ones mixed.
TEST(WebIntegration, PipelinedBatchesPastTheCorkBoundArriveWhole) {
  Application app({{"/small", handler<TextHandler>(std::string("tiny"))},
                   {"/big", handler<BigTextHandler>(size_t{6000})}});
  IOLoop& loop = IOLoop::current();
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  const uint16_t port = server.ports().at(0);
  std::string requests;
  for (int i = 0; i < 30; ++i) requests += i % 3 == 2 ? "GET /big HTTP/1.1\r\nHost: t\r\n\r\n" : "GET /small HTTP/1.1\r\nHost: t\r\n\r\n";
  requests += "GET /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  std::string reply;
  std::thread client([&] {
    reply = raw_request(port, requests);
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  // Its connections end before the application does (as in ServesRawSocketAndCurlOverHTTPServer).
  server.stop();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
  std::vector<std::string> bodies;
  for (size_t at = 0; (at = reply.find("Content-Length: ", at)) != std::string::npos;) {
    const size_t length = std::stoul(reply.substr(at + 16));
    const size_t body = reply.find("\r\n\r\n", at) + 4;
    bodies.push_back(reply.substr(body, length));
    at = body + length;
  }
  ASSERT_EQ(bodies.size(), 31u) << reply.size();
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (i % 3 == 2 && i < 30) {
      EXPECT_EQ(bodies[i].size(), 6000u) << i;
      EXPECT_TRUE(bodies[i].starts_with("squall squall")) << i;
    } else {
      EXPECT_EQ(bodies[i], "tiny") << i;
    }
  }
  EXPECT_TRUE(reply.ends_with("\r\n\r\ntiny"));
}

}  // namespace
}  // namespace squall
