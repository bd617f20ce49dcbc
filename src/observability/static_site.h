#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "observability/http_server.h"

namespace tickwire::obs {

// Bounds on what a StaticSite loads. Loading fails (one clear line) past any of them.
struct StaticSiteLimits {
  std::size_t max_files = 256;              // regular files under the root
  std::size_t max_file_bytes = 8u << 20;    // one file
  std::size_t max_total_bytes = 32u << 20;  // all files together (held in memory)
  std::size_t max_depth = 8;                // directory levels below the root
};

// A directory of web files (the chart page: HTML, scripts, styles), read once at startup into
// memory and served read-only under a URL prefix of the operations endpoint.
//
// A request can only ever name a file that was found when the site was loaded: the request path
// is looked up in that set, never joined to the root and opened. Names with a segment that
// starts with '.' (hidden files, "..", ".") or with characters outside [A-Za-z0-9._~-] are
// neither loaded nor served, and symbolic links are not followed, so nothing outside the root
// (nor a dot file inside it) can be reached.
class StaticSite {
 public:
  struct File {
    std::string content_type;
    std::shared_ptr<const std::string> body;  // shared by every response that sends it
  };

  // Reads every file under `root`. On failure returns nullptr and sets `error` to one line.
  static std::unique_ptr<StaticSite> Load(const std::string& root, std::string& error,
                                          StaticSiteLimits limits = {});

  // The response for `path`, the part of the request path after the site's prefix ("" for the
  // prefix itself, "app.js", "img/logo.svg", still percent-encoded): the file, index.html for
  // "" or a path ending in '/', 404 for a name that is not a loaded file, 400 for a malformed
  // one. Every response carries nosniff and a Content-Security-Policy that allows scripts and
  // styles from this origin only and WebSocket connections anywhere (the page asks which).
  HttpResponse Serve(std::string_view path) const;

  std::size_t file_count() const { return files_.size(); }
  std::size_t total_bytes() const { return total_bytes_; }
  // The file at decoded relative `name` ("index.html", "img/logo.svg"), or nullptr.
  const File* Find(std::string_view name) const;

  // The media type for a file name, by its extension (application/octet-stream if unknown).
  static std::string ContentType(std::string_view name);
  // Whether `name` is a relative path the site may hold: segments separated by '/', each
  // non-empty, not starting with '.', of [A-Za-z0-9._~-] only.
  static bool ValidName(std::string_view name);

 private:
  StaticSite() = default;
  std::map<std::string, File, std::less<>> files_;
  std::size_t total_bytes_ = 0;
};

}  // namespace tickwire::obs
