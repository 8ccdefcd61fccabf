// Routing: which target answers a request (Tornado's `routing` module).
//
// What it is for: an Application is a list of rules; each Rule pairs a Matcher (does
// this request concern me, and with which path arguments?) with a target (for an
// Application, a handler factory; or a nested RuleRouter). The first rule whose matcher
// matches wins. PathMatches is the usual matcher: an RE2 regex over the request path,
// anchored at both ends, whose groups become the handler's path arguments —
// percent-decoded, positional when the groups are unnamed, by name when they are all
// named (mixing both kinds is refused when the rule is made). Rules with a name can be
// turned back into a URL (reverse_url) when their pattern is simple enough.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "squall/http_request.h"

namespace re2 {
class RE2;
}

namespace squall {

// What a matcher extracted from a request. A group that did not take part in the match
// gives an empty string.
struct MatchResult {
  std::vector<std::string> path_args;                              // unnamed groups
  std::vector<std::pair<std::string, std::string>> path_kwargs;  // named groups, in order
};

class Matcher {
 public:
  virtual ~Matcher() = default;
  // The extracted arguments if the request matches, else nullopt.
  virtual std::optional<MatchResult> match(const HTTPServerRequest& request) const = 0;
  // A URL for these arguments, or nullopt if this matcher cannot be reversed.
  virtual std::optional<std::string> reverse(const std::vector<std::string>& args) const;
};

// Matches every request.
class AnyMatches : public Matcher {
 public:
  std::optional<MatchResult> match(const HTTPServerRequest&) const override { return MatchResult{}; }
};

// Matches the request's host_name against a regex (anchored at both ends).
class HostMatches : public Matcher {
 public:
  explicit HostMatches(std::string_view host_pattern);  // throws std::invalid_argument
  ~HostMatches() override;
  std::optional<MatchResult> match(const HTTPServerRequest& request) const override;

 private:
  std::unique_ptr<re2::RE2> regex_;
};

// Matches the request path against a regex; '$' is appended when missing and the match
// must start at the beginning of the path, so "/a" does not match "/ab".
class PathMatches : public Matcher {
 public:
  // Throws std::invalid_argument for an invalid regex or a mix of named and unnamed
  // capturing groups.
  explicit PathMatches(std::string_view pattern);
  ~PathMatches() override;

  std::optional<MatchResult> match(const HTTPServerRequest& request) const override;
  std::optional<MatchResult> match_path(std::string_view path) const;
  // Fills the groups with the (percent-encoded) arguments; nullopt if the pattern is not
  // reversible (nested or non-capturing groups, character classes outside groups, ...)
  // or the argument count differs from the group count.
  std::optional<std::string> reverse(const std::vector<std::string>& args) const override;
  const std::string& pattern() const { return pattern_; }
  // The one path this pattern matches when it has no regex operator at all ("/json"),
  // else nullptr: a router compares such paths without calling match().
  const std::string* literal_path() const { return literal_ ? &prefix_ : nullptr; }

 private:
  std::string pattern_;
  std::unique_ptr<re2::RE2> regex_;
  int groups_ = 0;
  std::vector<std::string> group_names_;  // by group index - 1 (empty when unnamed)
  bool named_ = false;
  std::optional<std::vector<std::string>> reverse_parts_;  // literal pieces between groups
  std::string prefix_;    // every match starts with this (the literal before any group)
  bool literal_ = false;  // the pattern is prefix_ exactly
};

class RuleRouter;
class RequestHandler;  // web.h

// Makes the handler for one request (web.h's handler<H>(...) makes one).
using HandlerFactory = std::function<std::unique_ptr<RequestHandler>()>;

// A matcher, what it routes to, and an optional name for reverse_url.
struct Rule {
  // A handler factory (what an Application answers with), or a nested router searched
  // once this rule's matcher matched. Both convert implicitly: Rule{matcher, factory}.
  using Target = std::variant<HandlerFactory, std::shared_ptr<RuleRouter>>;

  std::shared_ptr<Matcher> matcher;
  Target target;
  std::string name;

  // The target's factory, or nullptr when it is a router (or an empty factory).
  const HandlerFactory* factory() const {
    const auto* f = std::get_if<HandlerFactory>(&target);
    return f && *f ? f : nullptr;
  }
  // The target's router, or nullptr when it is a factory (or a null router).
  const RuleRouter* router() const {
    const auto* r = std::get_if<std::shared_ptr<RuleRouter>>(&target);
    return r ? r->get() : nullptr;
  }
};

// The result of routing a request: the rule that matched and its arguments (those of an
// enclosing router's rules are merged in front).
struct RouteMatch {
  const Rule* rule = nullptr;
  MatchResult params;
};

// An ordered list of rules; the first that matches wins.
class RuleRouter {
 public:
  virtual ~RuleRouter() = default;
  void add_rule(Rule rule);
  const std::vector<Rule>& rules() const { return rules_; }
  std::optional<RouteMatch> find(const HTTPServerRequest& request) const;
  // The same without a RouteMatch: the rule that matched (nullptr: none); `params`, empty
  // on entry, receives its arguments (and stays empty when none matched). A rule of a
  // literal path, most of an application's, matches with no argument made or moved.
  const Rule* find_rule(const HTTPServerRequest& request, MatchResult& params) const;
  // The URL of the rule named `name` (searched in nested routers too).
  std::optional<std::string> reverse_url(std::string_view name, const std::vector<std::string>& args = {}) const;

 private:
  // Per rule, where the path it matches sits in literal_bytes_ when its matcher is a plain
  // PathMatches of a literal pattern: most rules of an application are, and most of them
  // do not match, which a comparison tells without a virtual call and a MatchResult.
  // All of them side by side, apart from the rules and their matchers, so a request's
  // search reads two blocks instead of one matcher object per rule passed over.
  struct LiteralPath {
    static constexpr uint32_t kNone = UINT32_MAX;  // size of a rule that is not literal
    uint32_t offset = 0;
    uint32_t size = kNone;
  };

  std::vector<Rule> rules_;
  std::vector<LiteralPath> literal_paths_;
  std::string literal_bytes_;
};

// Percent-encodes like Python's urllib.parse.quote: letters, digits, "_.-~" and (when
// keep_slash) '/' are kept.
std::string url_escape(std::string_view s, bool keep_slash = true);

}  // namespace squall
