// Fuzzes the text parsers of the server settings. The first input byte picks one (mod 3), the
// rest is its text:
//   0  a network (Cidr::Parse): an accepted one prints back to itself and contains its own
//      network address, host bits clear;
//   1  a duration (ParseDuration): an accepted one is within a year and FormatDuration prints
//      text that parses back to it;
//   2  CONFIG_FILE text (ParseConfigFileText), whose settings then go through every setting's
//      parser and Validate (ParseServerConfig): an accepted file prints back (every value
//      quoted, with a comment) to the same settings, and parsing never throws.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "config/cidr.h"
#include "config/config.h"
#include "config/duration.h"

namespace {

using namespace tickwire::config;

void Check(bool ok) {
  if (!ok) std::abort();
}

void FuzzCidr(std::string_view text) {
  const auto c = Cidr::Parse(text);
  if (!c) return;
  const unsigned max = c->v6 ? 128 : 32;
  Check(c->prefix <= max);
  Check(c->text == text);
  Check(c->Contains(c->v6, c->bytes));
  for (unsigned bit = c->prefix; bit < max; ++bit) {
    Check((c->bytes[bit / 8] & (0x80u >> (bit % 8))) == 0);
  }
  if (!c->v6) {
    // Its IPv4-mapped IPv6 form counts as the same address.
    std::array<std::uint8_t, 16> mapped{};
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    for (std::size_t i = 0; i < 4; ++i) mapped[12 + i] = c->bytes[i];
    Check(c->Contains(true, mapped));
  }
}

void FuzzDuration(std::string_view text) {
  const auto d = ParseDuration(text);
  if (!d) return;
  Check(d->count() >= 0 && d->count() <= 365LL * 24 * 3600 * 1000);
  const auto again = ParseDuration(FormatDuration(*d));
  Check(again.has_value() && *again == *d);
}

void FuzzConfigFile(std::string_view text) {
  std::map<std::string, std::string> file;
  const std::string error = ParseConfigFileText(text, file);
  if (!error.empty()) return;
  // Every accepted value prints back, quoted, as a line that parses to the same value: a value
  // never holds both quotes, a line break or another control character.
  std::string printed;
  for (const auto& [name, value] : file) {
    Check(!name.empty());
    for (char c : name) Check(c != ' ' && c != '\t' && c != '=' && c != '#');
    const bool has_double = value.find('"') != std::string::npos;
    Check(!(has_double && value.find('\'') != std::string::npos));
    for (char c : value) Check(static_cast<unsigned char>(c) >= 0x20 || c == '\t');
    const char quote = has_double ? '\'' : '"';
    printed += name + "=" + quote + value + quote + " # printed\n";
  }
  std::map<std::string, std::string> again;
  Check(ParseConfigFileText(printed, again).empty());
  Check(again == file);
  // The file's settings as the environment (never CONFIG_FILE: that would read a real file).
  const EnvLookup env = [&file](const std::string& name) -> std::optional<std::string> {
    if (name == "CONFIG_FILE") return std::nullopt;
    const auto it = file.find(name);
    if (it == file.end()) return std::nullopt;
    return it->second;
  };
  const ParseResult r = ParseServerConfig({}, env);
  if (const auto* c = std::get_if<Config>(&r)) Check(!Validate(*c).has_value());
  if (const auto* e = std::get_if<ParseError>(&r)) Check(!e->message.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      FuzzCidr(text);
      break;
    case 1:
      FuzzDuration(text);
      break;
    default:
      FuzzConfigFile(text);
      break;
  }
  return 0;
}
