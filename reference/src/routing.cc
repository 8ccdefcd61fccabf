#include "squall/routing.h"

#include <re2/re2.h>

#include <cctype>
#include <cstring>
#include <stdexcept>
#include <typeinfo>

#include "squall/detail/hot_path.h"

namespace squall {

namespace {

std::string anchored(std::string_view pattern) {
  std::string p(pattern);
  if (p.empty() || p.back() != '$') p.push_back('$');
  return p;
}

std::unique_ptr<re2::RE2> compile(const std::string& pattern) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_unique<re2::RE2>(pattern, options);
  if (!regex->ok()) throw std::invalid_argument("invalid regex '" + pattern + "': " + regex->error());
  return regex;
}

// Undoes backslash escapes of punctuation ("\." -> "."); nullopt for anything that is
// not a literal (an escape of a letter or digit, or a regex operator).
std::optional<std::string> unescape_literal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      if (i + 1 >= s.size() || std::isalnum(static_cast<unsigned char>(s[i + 1]))) return std::nullopt;
      out.push_back(s[++i]);
    } else if (std::string_view("()[]{}*+?|.^$").find(c) != std::string_view::npos) {
      return std::nullopt;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> Matcher::reverse(const std::vector<std::string>&) const { return std::nullopt; }

std::string url_escape(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// ---- HostMatches --------------------------------------------------------------------

HostMatches::HostMatches(std::string_view host_pattern) : regex_(compile(anchored(host_pattern))) {}
HostMatches::~HostMatches() = default;

std::optional<MatchResult> HostMatches::match(const HTTPServerRequest& request) const {
  re2::StringPiece input(request.host_name);
  if (!regex_->Match(input, 0, input.size(), re2::RE2::ANCHOR_START, nullptr, 0)) return std::nullopt;
  return MatchResult{};
}

// ---- PathMatches --------------------------------------------------------------------

PathMatches::PathMatches(std::string_view pattern) : pattern_(anchored(pattern)), regex_(compile(pattern_)) {
  groups_ = regex_->NumberOfCapturingGroups();
  group_names_.assign(static_cast<size_t>(groups_), std::string());
  for (const auto& [name, index] : regex_->NamedCapturingGroups()) group_names_[static_cast<size_t>(index - 1)] = name;
  size_t named = 0;
  for (const auto& n : group_names_) named += n.empty() ? 0 : 1;
  if (named != 0 && named != group_names_.size()) {
    throw std::invalid_argument("pattern '" + pattern_ + "' mixes named and unnamed groups");
  }
  named_ = named != 0;

  // Reversibility, as Tornado's _find_groups: strip the anchors; every '(' must open a
  // capturing group (no nesting, no non-capturing groups); the text between groups must
  // be a literal.
  std::string_view p = pattern_;
  if (!p.empty() && p.front() == '^') p.remove_prefix(1);
  if (!p.empty() && p.back() == '$') p.remove_suffix(1);
  size_t opens = 0;
  for (char c : p) opens += c == '(' ? 1 : 0;
  if (opens != static_cast<size_t>(groups_)) return;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t open = p.find('(', pos);
    std::string_view literal = p.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
    auto lit = unescape_literal(literal);
    if (!lit) return;
    parts.push_back(std::move(*lit));
    if (open == std::string_view::npos) break;
    // Find the matching ')' — groups are not nested, so the first unescaped ')'.
    size_t i = open + 1;
    bool closed = false;
    for (; i < p.size(); ++i) {
      if (p[i] == '\\') {
        ++i;
        continue;
      }
      if (p[i] == ')') {
        closed = true;
        break;
      }
    }
    if (!closed) return;
    pos = i + 1;
  }
  if (parts.size() != static_cast<size_t>(groups_) + 1) return;
  // Every match starts with the literal before the first group; a pattern without groups
  // is that literal exactly. Checked before RE2, which is most of a request's routing
  // cost when most rules do not match.
  prefix_ = parts[0];
  literal_ = groups_ == 0;
  reverse_parts_ = std::move(parts);
}

PathMatches::~PathMatches() = default;

std::optional<MatchResult> PathMatches::match(const HTTPServerRequest& request) const {
  return match_path(request.path);
}

std::optional<MatchResult> PathMatches::match_path(std::string_view path) const {
  if (literal_) return path == prefix_ ? std::optional<MatchResult>(MatchResult{}) : std::nullopt;
  if (!path.starts_with(prefix_)) return std::nullopt;
  std::vector<re2::StringPiece> groups(static_cast<size_t>(groups_) + 1);
  re2::StringPiece input(path.data(), path.size());
  if (!regex_->Match(input, 0, input.size(), re2::RE2::ANCHOR_START, groups.data(), static_cast<int>(groups.size()))) {
    return std::nullopt;
  }
  MatchResult result;
  for (int i = 1; i <= groups_; ++i) {
    const re2::StringPiece& g = groups[static_cast<size_t>(i)];
    std::string value = g.data() ? url_unquote(std::string_view(g.data(), g.size())) : std::string();
    if (named_) {
      result.path_kwargs.emplace_back(group_names_[static_cast<size_t>(i - 1)], std::move(value));
    } else {
      result.path_args.push_back(std::move(value));
    }
  }
  return result;
}

std::optional<std::string> PathMatches::reverse(const std::vector<std::string>& args) const {
  if (!reverse_parts_ || args.size() != static_cast<size_t>(groups_)) return std::nullopt;
  std::string out = (*reverse_parts_)[0];
  for (size_t i = 0; i < args.size(); ++i) {
    out += url_escape(args[i]);
    out += (*reverse_parts_)[i + 1];
  }
  return out;
}

// ---- RuleRouter ---------------------------------------------------------------------

void RuleRouter::add_rule(Rule rule) {
  if (!rule.matcher) throw std::invalid_argument("rule without a matcher");
  // A subclass of PathMatches may match differently: only the class itself is taken at
  // its word.
  const Matcher& matcher = *rule.matcher;
  const auto* path_matcher = typeid(matcher) == typeid(PathMatches) ? static_cast<const PathMatches*>(&matcher) : nullptr;
  const std::string* literal = path_matcher ? path_matcher->literal_path() : nullptr;
  if (literal && literal->size() >= LiteralPath::kNone) literal = nullptr;  // matched by match()
  LiteralPath entry;
  if (literal) entry = {static_cast<uint32_t>(literal_bytes_.size()), static_cast<uint32_t>(literal->size())};
  literal_paths_.reserve(rules_.size() + 1);  // both vectors grow or neither does
  rules_.push_back(std::move(rule));
  literal_paths_.push_back(entry);
  if (literal) literal_bytes_ += *literal;
}

SQUALL_HOT
const Rule* RuleRouter::find_rule(const HTTPServerRequest& request, MatchResult& params) const {
  const std::string_view path = request.path;
  const std::size_t count = rules_.size();
  for (std::size_t i = 0; i < count; ++i) {
    const LiteralPath entry = literal_paths_[i];
    const bool literal = entry.size != LiteralPath::kNone;
    if (literal && (entry.size != path.size() ||
                    std::memcmp(literal_bytes_.data() + entry.offset, path.data(), path.size()) != 0)) {
      continue;  // the usual miss: nothing made
    }
    const Rule& rule = rules_[i];
    const bool nested = std::holds_alternative<std::shared_ptr<RuleRouter>>(rule.target);
    if (literal && !nested) return &rule;  // the usual hit: no arguments, nothing made
    std::optional<MatchResult> own;
    if (literal) {
      own.emplace();
    } else {
      own = rule.matcher->match(request);
      if (!own) continue;
    }
    if (!nested) {
      params = std::move(*own);
      return &rule;
    }
    const RuleRouter* inner_router = rule.router();
    if (!inner_router) continue;
    MatchResult inner;
    const Rule* found = inner_router->find_rule(request, inner);
    if (!found) continue;
    // This rule's arguments come first, then the nested router's.
    own->path_args.insert(own->path_args.end(), std::make_move_iterator(inner.path_args.begin()),
                          std::make_move_iterator(inner.path_args.end()));
    own->path_kwargs.insert(own->path_kwargs.end(), std::make_move_iterator(inner.path_kwargs.begin()),
                            std::make_move_iterator(inner.path_kwargs.end()));
    params = std::move(*own);
    return found;
  }
  return nullptr;
}

std::optional<RouteMatch> RuleRouter::find(const HTTPServerRequest& request) const {
  MatchResult params;
  const Rule* rule = find_rule(request, params);
  if (!rule) return std::nullopt;
  return RouteMatch{rule, std::move(params)};
}

std::optional<std::string> RuleRouter::reverse_url(std::string_view name, const std::vector<std::string>& args) const {
  for (const Rule& rule : rules_) {
    if (!rule.name.empty() && rule.name == name) return rule.matcher->reverse(args);
    if (const RuleRouter* nested = rule.router()) {
      if (auto url = nested->reverse_url(name, args)) return url;
    }
  }
  return std::nullopt;
}

}  // namespace squall
