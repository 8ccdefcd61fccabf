// Routing: matchers, rule order, path arguments and reverse URLs.
#include "squall/routing.h"

#include <gtest/gtest.h>

#include <string>

#include "squall/web.h"  // RequestHandler, for a handler factory target

namespace squall {
namespace {

HTTPServerRequest request_for(std::string target, std::string host = "example.com") {
  HTTPHeaders headers;
  headers.add("Host", host);
  return HTTPServerRequest(RequestStartLine{"GET", std::move(target), "HTTP/1.1"}, std::move(headers),
                           RequestContext{"127.0.0.1", "http"});
}

TEST(PathMatches, IsAnchoredAtBothEnds) {
  PathMatches m("/a");
  EXPECT_TRUE(m.match_path("/a"));
  EXPECT_FALSE(m.match_path("/ab"));
  EXPECT_FALSE(m.match_path("/x/a"));
  EXPECT_EQ(m.pattern(), "/a$");
}

TEST(PathMatches, ExistingDollarIsNotDoubled) {
  PathMatches m("/a$");
  EXPECT_EQ(m.pattern(), "/a$");
  EXPECT_TRUE(m.match_path("/a"));
}

// Literal patterns and literal prefixes are matched without RE2: the same answers.
TEST(PathMatches, LiteralPatternsMatchExactlyAsTheRegexWould) {
  PathMatches dotted("/a\\.b");
  EXPECT_TRUE(dotted.match_path("/a.b"));
  EXPECT_FALSE(dotted.match_path("/axb"));
  EXPECT_FALSE(dotted.match_path("/a.b\n"));
  EXPECT_FALSE(dotted.match_path("/a.b/"));
  PathMatches alternatives("/(?:x|y)");
  EXPECT_TRUE(alternatives.match_path("/y"));
  PathMatches with_group("/bytes/(\\d+)");
  EXPECT_FALSE(with_group.match_path("/byte/12"));
  EXPECT_FALSE(with_group.match_path("/bytes/"));
  ASSERT_TRUE(with_group.match_path("/bytes/12"));
  EXPECT_EQ(with_group.match_path("/bytes/12")->path_args, (std::vector<std::string>{"12"}));
  PathMatches class_first("/[ab]c");
  EXPECT_TRUE(class_first.match_path("/bc"));
  EXPECT_FALSE(class_first.match_path("/cc"));
}

TEST(PathMatches, MatchesOnPathWithoutQuery) {
  PathMatches m("/a");
  EXPECT_TRUE(m.match(request_for("/a?x=1")));
}

TEST(PathMatches, UnnamedGroupsArePositionalArgs) {
  PathMatches m("/path/([^/]+)/([0-9]+)");
  auto r = m.match_path("/path/abc/42");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path_args, (std::vector<std::string>{"abc", "42"}));
  EXPECT_TRUE(r->path_kwargs.empty());
}

TEST(PathMatches, NamedGroupsAreKeywordArgs) {
  PathMatches m("/named/(?P<first>[^/]+)/(?P<second>[^/]+)");
  auto r = m.match_path("/named/x/y");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->path_args.empty());
  ASSERT_EQ(r->path_kwargs.size(), 2u);
  EXPECT_EQ(r->path_kwargs[0], (std::pair<std::string, std::string>{"first", "x"}));
  EXPECT_EQ(r->path_kwargs[1], (std::pair<std::string, std::string>{"second", "y"}));
}

TEST(PathMatches, MixingNamedAndUnnamedGroupsIsRefused) {
  EXPECT_THROW(PathMatches("/(?P<a>x)/(y)"), std::invalid_argument);
}

TEST(PathMatches, NonCapturingGroupsDoNotCount) {
  PathMatches m("/(?:a|b)/([0-9]+)");
  auto r = m.match_path("/b/7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path_args, std::vector<std::string>{"7"});
}

TEST(PathMatches, InvalidRegexIsRefused) { EXPECT_THROW(PathMatches("/(unclosed"), std::invalid_argument); }

TEST(PathMatches, ArgsArePercentDecodedButPlusIsKept) {
  PathMatches m("/p/([^/]+)");
  auto r = m.match_path("/p/a%20b%2Fc+d");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path_args, std::vector<std::string>{"a b/c+d"});
}

TEST(PathMatches, GroupThatDidNotParticipateIsEmpty) {
  PathMatches m("/opt(/[a-z]+)?");
  auto r = m.match_path("/opt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path_args, std::vector<std::string>{""});
}

TEST(PathMatches, ReverseFillsGroupsWithEscapedArgs) {
  PathMatches m("/path/([^/]+)/([0-9]+)");
  EXPECT_EQ(m.reverse({"a b", "3"}), std::optional<std::string>("/path/a%20b/3"));
  EXPECT_EQ(m.reverse({"only-one"}), std::nullopt);
}

TEST(PathMatches, ReverseUnescapesLiteralParts) {
  PathMatches m(R"(/file\.txt/(\d+))");
  EXPECT_EQ(m.reverse({"5"}), std::optional<std::string>("/file.txt/5"));
}

TEST(PathMatches, NestedGroupsAreNotReversible) {
  PathMatches m("/((a)b)");
  EXPECT_EQ(m.reverse({"x", "y"}), std::nullopt);
  PathMatches star("/a.*");
  EXPECT_EQ(star.reverse({}), std::nullopt);
}

TEST(HostMatches, MatchesHostNameWithoutPortCaseInsensitively) {
  HostMatches m(R"(www\.example\.com)");
  EXPECT_TRUE(m.match(request_for("/", "WWW.example.com:8080")));
  EXPECT_FALSE(m.match(request_for("/", "www.example.com.evil")));
  EXPECT_FALSE(m.match(request_for("/", "example.com")));
}

TEST(AnyMatches, MatchesEverything) { EXPECT_TRUE(AnyMatches().match(request_for("/whatever"))); }

TEST(RuleRouter, FirstMatchingRuleWins) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/a/.*"), {}, "first"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/a/b"), {}, "second"});
  auto match = router.find(request_for("/a/b"));
  ASSERT_TRUE(match);
  EXPECT_EQ(match->rule, &router.rules()[0]);
}

// Literal rules are compared without calling their matcher: order still decides, and
// only an exact path matches.
TEST(RuleRouter, LiteralRulesKeepOrderAndMatchExactly) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/a/b"), {}, "literal"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/a/.*"), {}, "regex"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/plain\\.txt"), {}, "escaped"});
  auto literal = router.find(request_for("/a/b?x=1"));
  ASSERT_TRUE(literal);
  EXPECT_EQ(literal->rule, &router.rules()[0]);
  for (const char* other : {"/a/bc", "/a/B", "/a/"}) {
    auto regex = router.find(request_for(other));
    ASSERT_TRUE(regex) << other;
    EXPECT_EQ(regex->rule, &router.rules()[1]) << other;
  }
  auto escaped = router.find(request_for("/plain.txt"));
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->rule, &router.rules()[2]);
  EXPECT_FALSE(router.find(request_for("/plainXtxt")));
  EXPECT_FALSE(router.find(request_for("/plain.tx")));
}

// The literal paths sit side by side in one table: one path's bytes must not run into the
// next, the empty path is a path, and the table growing keeps every earlier rule found.
TEST(RuleRouter, LiteralPathsSideBySideStayApart) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/ab"), {}, "ab"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/a"), {}, "a"});
  router.add_rule(Rule{std::make_shared<PathMatches>(""), {}, "empty"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/b"), {}, "b"});
  for (int i = 0; i < 200; ++i) {
    router.add_rule(Rule{std::make_shared<PathMatches>("/many/" + std::to_string(i)), {}, "many"});
  }
  const auto index_of = [&](const char* path) -> long {
    auto found = router.find(request_for(path));
    return found ? found->rule - router.rules().data() : -1;
  };
  EXPECT_EQ(index_of("/ab"), 0);
  EXPECT_EQ(index_of("/a"), 1);
  EXPECT_EQ(index_of(""), 2);
  EXPECT_EQ(index_of("/b"), 3);
  EXPECT_EQ(index_of("/a/b"), -1);
  EXPECT_EQ(index_of("/ab/"), -1);
  EXPECT_EQ(index_of("/"), -1);
  EXPECT_EQ(index_of("/many/0"), 4);
  EXPECT_EQ(index_of("/many/199"), 203);
  EXPECT_EQ(index_of("/many/200"), -1);
  EXPECT_EQ(index_of("/many/1"), 5);
}

// A subclass of PathMatches may decide differently from its pattern: its match() is
// asked even when the pattern is a literal.
class RefusingPathMatches : public PathMatches {
 public:
  using PathMatches::PathMatches;
  std::optional<MatchResult> match(const HTTPServerRequest&) const override {
    ++calls;
    return std::nullopt;
  }
  mutable int calls = 0;
};

TEST(RuleRouter, PathMatchesSubclassIsAsked) {
  auto refusing = std::make_shared<RefusingPathMatches>("/a");
  RuleRouter router;
  router.add_rule(Rule{refusing, {}, "refusing"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/a"), {}, "plain"});
  auto match = router.find(request_for("/a"));
  ASSERT_TRUE(match);
  EXPECT_EQ(match->rule, &router.rules()[1]);
  EXPECT_EQ(refusing->calls, 1);
}

TEST(RuleRouter, NoMatchGivesNothing) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/a"), {}, ""});
  EXPECT_FALSE(router.find(request_for("/b")));
}

TEST(RuleRouter, NestedRouterIsSearchedAfterItsMatcher) {
  auto inner = std::make_shared<RuleRouter>();
  inner->add_rule(Rule{std::make_shared<PathMatches>("/x/([0-9]+)"), {}, "item"});
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<HostMatches>("api\\.example\\.com"), inner, ""});
  router.add_rule(Rule{std::make_shared<AnyMatches>(), {}, ""});
  EXPECT_EQ(router.rules()[0].router(), inner.get());
  auto on_api = router.find(request_for("/x/5", "api.example.com"));
  ASSERT_TRUE(on_api);
  EXPECT_EQ(on_api->rule, &inner->rules()[0]);
  EXPECT_EQ(on_api->params.path_args, std::vector<std::string>{"5"});
  auto elsewhere = router.find(request_for("/x/5", "www.example.com"));
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->rule, &router.rules()[1]);
  EXPECT_EQ(router.reverse_url("item", {"9"}), std::optional<std::string>("/x/9"));
}

// find_rule: the rule with its arguments stored in the caller's MatchResult; a nested
// router's arguments follow its enclosing rule's; a literal rule behind a nested router
// of the same literal path is still searched; a rule whose nested router finds nothing
// leaves no argument behind.
TEST(RuleRouter, FindRuleStoresTheArgumentsInTheCallersResult) {
  auto inner = std::make_shared<RuleRouter>();
  inner->add_rule(Rule{std::make_shared<PathMatches>("/n/([a-z]+)/([0-9]+)"), {}, "inner"});
  auto empty_inner = std::make_shared<RuleRouter>();
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/lit"), empty_inner, "nested literal"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/lit"), {}, "literal"});
  router.add_rule(Rule{std::make_shared<PathMatches>("/n/(a)/.*"), inner, "outer"});

  MatchResult params;
  EXPECT_EQ(router.find_rule(request_for("/lit"), params), &router.rules()[1]);
  EXPECT_TRUE(params.path_args.empty());
  EXPECT_TRUE(params.path_kwargs.empty());

  MatchResult nested;
  EXPECT_EQ(router.find_rule(request_for("/n/a/7"), nested), &inner->rules()[0]);
  EXPECT_EQ(nested.path_args, (std::vector<std::string>{"a", "a", "7"}));

  MatchResult none;
  EXPECT_EQ(router.find_rule(request_for("/n/b/7"), none), nullptr);
  EXPECT_EQ(router.find_rule(request_for("/other"), none), nullptr);
  EXPECT_TRUE(none.path_args.empty());  // the outer rule's match is not left behind
}

TEST(RuleRouter, ReverseUrlByName) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<PathMatches>("/u/([a-z]+)"), {}, "user"});
  EXPECT_EQ(router.reverse_url("user", {"bob"}), std::optional<std::string>("/u/bob"));
  EXPECT_EQ(router.reverse_url("nobody", {}), std::nullopt);
}

TEST(Rule, TargetIsAFactoryOrARouter) {
  Rule with_factory{std::make_shared<AnyMatches>(), HandlerFactory([] { return nullptr; }), ""};
  EXPECT_NE(with_factory.factory(), nullptr);
  EXPECT_EQ(with_factory.router(), nullptr);
  auto nested = std::make_shared<RuleRouter>();
  Rule with_router{std::make_shared<AnyMatches>(), nested, ""};
  EXPECT_EQ(with_router.factory(), nullptr);
  EXPECT_EQ(with_router.router(), nested.get());
  Rule empty{std::make_shared<AnyMatches>(), {}, ""};  // an empty factory counts as none
  EXPECT_EQ(empty.factory(), nullptr);
  EXPECT_EQ(empty.router(), nullptr);
}

TEST(RuleRouter, NullNestedRouterIsSkipped) {
  RuleRouter router;
  router.add_rule(Rule{std::make_shared<AnyMatches>(), std::shared_ptr<RuleRouter>(), ""});
  router.add_rule(Rule{std::make_shared<AnyMatches>(), {}, "after"});
  auto match = router.find(request_for("/"));
  ASSERT_TRUE(match);
  EXPECT_EQ(match->rule, &router.rules()[1]);
}

TEST(UrlEscape, QuotesLikePython) {
  EXPECT_EQ(url_escape("a b/c?d=é"), "a%20b/c%3Fd%3D%C3%A9");
  EXPECT_EQ(url_escape("a/b", false), "a%2Fb");
}

}  // namespace
}  // namespace squall
