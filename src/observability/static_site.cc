#include "observability/static_site.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

namespace tickwire::obs {
namespace {

namespace fs = std::filesystem;

// Scripts, styles, images and fonts from this origin only; WebSocket connections to any host
// (the page asks for the stream endpoint, which listens on another port). No framing, no
// plugins, no form posts, no <base>.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict percent-decoding of a path: false on a '%' not followed by two hex digits.
bool DecodePath(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool ValidChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '~';
}

HttpResponse Plain(unsigned status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

}  // namespace

bool StaticSite::ValidName(std::string_view name) {
  if (name.empty()) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t slash = name.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? name.size() : slash;
    const std::string_view segment = name.substr(start, end - start);
    if (segment.empty() || segment.front() == '.') return false;
    for (char c : segment) {
      if (!ValidChar(c)) return false;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string StaticSite::ContentType(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".wasm", "application/wasm"},
      {".webmanifest", "application/manifest+json"},
  }};
  const std::size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const std::size_t dot = base.rfind('.');
  if (dot != std::string_view::npos) {
    const std::string_view ext = base.substr(dot);
    for (const auto& [e, type] : kTypes) {
      if (ext.size() == e.size() &&
          std::equal(ext.begin(), ext.end(), e.begin(), [](char a, char b) {
            return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
          })) {
        return std::string(type);
      }
    }
  }
  return "application/octet-stream";
}

std::unique_ptr<StaticSite> StaticSite::Load(const std::string& root, std::string& error,
                                             StaticSiteLimits limits) {
  std::error_code ec;
  const fs::file_status root_status = fs::status(root, ec);
  if (ec || !fs::is_directory(root_status)) {
    error = "WEB_ROOT: '" + root + "' is not a readable directory";
    return nullptr;
  }
  std::unique_ptr<StaticSite> site(new StaticSite());
  // Symbolic links are not followed (neither to files nor to directories), so the walk stays
  // inside the root.
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) {
    error = "WEB_ROOT: cannot list '" + root + "': " + ec.message();
    return nullptr;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::directory_entry& entry = *it;
    const fs::file_status st = entry.symlink_status(ec);
    if (ec) break;
    const std::string name = fs::relative(entry.path(), root, ec).generic_string();
    if (ec) break;
    const bool valid = ValidName(name);
    if (fs::is_directory(st)) {
      if (!valid || static_cast<std::size_t>(it.depth()) + 1 > limits.max_depth) {
        it.disable_recursion_pending();  // hidden or too deep: skip the whole subtree
      }
      continue;
    }
    if (!fs::is_regular_file(st) || !valid) continue;  // links, devices, hidden files
    if (site->files_.size() >= limits.max_files) {
      error =
          "WEB_ROOT: more than " + std::to_string(limits.max_files) + " files under '" + root + "'";
      return nullptr;
    }
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) {
      error = "WEB_ROOT: cannot read '" + entry.path().string() + "'";
      return nullptr;
    }
    // Read at most one byte past the limit: a file that grows meanwhile is still bounded.
    std::string body(limits.max_file_bytes + 1, '\0');
    in.read(body.data(), static_cast<std::streamsize>(body.size()));
    body.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) {
      error = "WEB_ROOT: cannot read '" + entry.path().string() + "'";
      return nullptr;
    }
    if (body.size() > limits.max_file_bytes) {
      error = "WEB_ROOT: '" + entry.path().string() + "' is larger than " +
              std::to_string(limits.max_file_bytes) + " bytes";
      return nullptr;
    }
    site->total_bytes_ += body.size();
    if (site->total_bytes_ > limits.max_total_bytes) {
      error = "WEB_ROOT: the files under '" + root + "' exceed " +
              std::to_string(limits.max_total_bytes) + " bytes together";
      return nullptr;
    }
    site->files_.emplace(
        name, File{ContentType(name), std::make_shared<const std::string>(std::move(body))});
  }
  if (ec) {
    error = "WEB_ROOT: cannot list '" + root + "': " + ec.message();
    return nullptr;
  }
  return site;
}

const StaticSite::File* StaticSite::Find(std::string_view name) const {
  const auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

HttpResponse StaticSite::Serve(std::string_view path) const {
  HttpResponse r;
  std::string name;
  if (!DecodePath(path, name)) {
    r = Plain(400, "malformed path\n");
  } else {
    if (name.empty() || name.back() == '/') name += "index.html";
    if (!ValidName(name)) {
      r = Plain(400, "malformed path\n");
    } else if (const File* f = Find(name)) {
      r.content_type = f->content_type;
      r.shared_body = f->body;
    } else {
      r = Plain(404, "not found\n");
    }
  }
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace tickwire::obs
