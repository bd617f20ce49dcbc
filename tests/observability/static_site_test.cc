// StaticSite: what a WEB_ROOT directory turns into (only valid names, no links, no dot files,
// bounded), and what a request path gets (the file with its type, index.html, 400 for malformed
// or escaping paths, 404 for anything not loaded).
#include "observability/static_site.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/temp_dir.h"

namespace tickwire::obs {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void Write(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// What the response sends: a file's shared bytes, or its own body (errors).
std::string Body(const HttpResponse& r) { return r.shared_body ? *r.shared_body : r.body; }

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

TEST(StaticSiteTest, ValidNames) {
  for (const char* ok : {"index.html", "a/b.js", "lightweight-charts_5.0~x.js", "x"}) {
    EXPECT_TRUE(StaticSite::ValidName(ok)) << ok;
  }
  for (const char* bad : {"", "/etc/passwd", "..", "../x", "a/../b", "a/./b", ".env", "a/.git/x",
                          "a//b", "a/", "a\\b", "a b", "a%2e", "a:b", "é"}) {
    EXPECT_FALSE(StaticSite::ValidName(bad)) << bad;
  }
}

TEST(StaticSiteTest, NulIsNotAName) { EXPECT_FALSE(StaticSite::ValidName(std::string("a\0b", 3))); }

TEST(StaticSiteTest, ContentTypes) {
  EXPECT_EQ(StaticSite::ContentType("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentType("a/chart.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentType("chart.css"), "text/css; charset=utf-8");
  EXPECT_EQ(StaticSite::ContentType("chart.js.map"), "application/json");
  EXPECT_EQ(StaticSite::ContentType("logo.svg"), "image/svg+xml");
  EXPECT_EQ(StaticSite::ContentType("LICENSE"), "application/octet-stream");
  EXPECT_EQ(StaticSite::ContentType("v1.2/blob"), "application/octet-stream");
}

TEST(StaticSiteTest, ServesLoadedFilesOnly) {
  TempDir outside;
  Write(outside.File("secret.txt"), "secret");
  TempDir dir;
  const std::string root = dir.File("site");
  Write(root + "/index.html", "<!doctype html>");
  Write(root + "/chart.js", "export {};");
  Write(root + "/img/logo.svg", "<svg/>");
  Write(root + "/.env", "TOKEN=1");
  Write(root + "/.hidden/x.js", "hidden");
  Write(root + "/bad name.js", "spaces");
  fs::create_symlink(outside.File("secret.txt"), root + "/secret.txt");
  fs::create_directory_symlink(outside.path(), root + "/out");

  std::string error;
  auto site = StaticSite::Load(root, error);
  ASSERT_NE(site, nullptr) << error;
  EXPECT_EQ(site->file_count(), 3u);
  EXPECT_EQ(site->total_bytes(), 15u + 10u + 6u);

  auto ok = site->Serve("");
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(Body(ok), "<!doctype html>");
  EXPECT_EQ(ok.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Header(ok, "X-Content-Type-Options"), "nosniff");
  EXPECT_NE(Header(ok, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(Body(site->Serve("index.html")), "<!doctype html>");
  EXPECT_EQ(site->Serve("chart.js").content_type, "text/javascript; charset=utf-8");
  // Every response refers to the one loaded copy.
  EXPECT_EQ(site->Serve("chart.js").shared_body.get(), site->Find("chart.js")->body.get());
  EXPECT_EQ(Body(site->Serve("img/logo.svg")), "<svg/>");
  EXPECT_EQ(Body(site->Serve("img%2Flogo.svg")), "<svg/>");  // decoded, then looked up
  EXPECT_EQ(site->Serve("img/").status, 404u);               // no img/index.html

  // Neither loaded nor reachable: links, dot files, escapes.
  for (const char* missing : {"secret.txt", "out/secret.txt", "nope.js", "img"}) {
    EXPECT_EQ(site->Serve(missing).status, 404u) << missing;
  }
  for (const char* bad : {"../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", ".env",
                          ".hidden/x.js", "img/../chart.js", "bad%20name.js", "%", "%zz", "a%0",
                          "%00", "/etc/passwd", "img//logo.svg"}) {
    const auto r = site->Serve(bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(r.body, "malformed path\n") << bad;
  }
}

TEST(StaticSiteTest, LoadFailsClearly) {
  TempDir dir;
  std::string error;
  EXPECT_EQ(StaticSite::Load(dir.File("missing"), error), nullptr);
  EXPECT_NE(error.find("WEB_ROOT: '"), std::string::npos) << error;
  EXPECT_NE(error.find("not a readable directory"), std::string::npos) << error;

  Write(dir.File("a.js"), std::string(100, 'x'));
  Write(dir.File("b.js"), std::string(100, 'x'));
  EXPECT_EQ(StaticSite::Load(dir.path(), error, {.max_file_bytes = 99}), nullptr);
  EXPECT_NE(error.find("is larger than 99 bytes"), std::string::npos) << error;
  EXPECT_EQ(StaticSite::Load(dir.path(), error, {.max_total_bytes = 150}), nullptr);
  EXPECT_NE(error.find("exceed 150 bytes"), std::string::npos) << error;
  EXPECT_EQ(StaticSite::Load(dir.path(), error, {.max_files = 1}), nullptr);
  EXPECT_NE(error.find("more than 1 files"), std::string::npos) << error;
  EXPECT_NE(StaticSite::Load(dir.path(), error, {.max_files = 2}), nullptr) << error;

  // Too deep: the subtree is skipped, not an error.
  Write(dir.File("d1/d2/deep.js"), "x");
  auto site = StaticSite::Load(dir.path(), error, {.max_depth = 1});
  ASSERT_NE(site, nullptr) << error;
  EXPECT_EQ(site->Find("d1/d2/deep.js"), nullptr);
  site = StaticSite::Load(dir.path(), error, {.max_depth = 2});
  ASSERT_NE(site, nullptr) << error;
  EXPECT_NE(site->Find("d1/d2/deep.js"), nullptr);
}

}  // namespace
}  // namespace tickwire::obs
