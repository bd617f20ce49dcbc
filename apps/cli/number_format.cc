#include "number_format.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/core.h>

namespace tickwire::cli {

std::string FixedShortest(double v) {
  if (v == 0) return "0";  // also -0
  // The longest shortest-fixed form of a finite double: 309 integer digits, or "0." with up to
  // 340 decimals for the smallest subnormals.
  char buf[512];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  if (r.ec != std::errc()) return fmt::format("{:f}", v);  // not reached for finite values
  return std::string(buf, r.ptr);
}

std::string FixedSignificant(double v, int digits) {
  digits = std::clamp(digits, 1, 17);
  // Round in decimal (printf's exact rounding), then print the nearest double to that decimal.
  const std::string rounded = fmt::format("{:.{}e}", v, digits - 1);
  return FixedShortest(std::strtod(rounded.c_str(), nullptr));
}

namespace {

struct Parts {
  std::string_view integer;   // sign included
  std::string_view fraction;  // without the point; empty when there is none
};

Parts Split(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return {text, {}};
  return {text.substr(0, dot), text.substr(dot + 1)};
}

}  // namespace

void DecimalColumn::Fit(std::string_view text) {
  const Parts p = Split(text);
  int_digits_ = std::max(int_digits_, static_cast<int>(p.integer.size()));
  frac_digits_ = std::max(frac_digits_, static_cast<int>(p.fraction.size()));
}

int DecimalColumn::width() const {
  return std::max(min_width_, int_digits_ + (frac_digits_ > 0 ? frac_digits_ + 1 : 0));
}

std::string DecimalColumn::Format(std::string_view text) const {
  const Parts p = Split(text);
  const int tail = frac_digits_ > 0 ? frac_digits_ + 1 : 0;  // the point and the fraction
  std::string out;
  out.reserve(static_cast<std::size_t>(width()));
  const int lead = width() - tail - static_cast<int>(p.integer.size());
  out.append(static_cast<std::size_t>(std::max(0, lead)), ' ');
  out += p.integer;
  if (p.fraction.empty()) {
    out.append(static_cast<std::size_t>(tail), ' ');
  } else {
    out += '.';
    out += p.fraction;
    out.append(
        static_cast<std::size_t>(std::max(0, frac_digits_ - static_cast<int>(p.fraction.size()))),
        ' ');
  }
  return out;
}

}  // namespace tickwire::cli
