#pragma once

#include <string>

namespace tickwire::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction unless
// TICKWIRE_KEEP_TEST_DIRS is set in the environment (for looking at server logs afterwards).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `path()/name`.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whole contents of `path`, or empty when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace tickwire::testing
