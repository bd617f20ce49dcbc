#pragma once

// How the CLI prints prices, sizes and other real numbers: in fixed notation (never "1e+15"),
// and in tables aligned on the decimal point. Pure functions, unit-tested.

#include <string>
#include <string_view>

namespace tickwire::cli {

// The shortest decimal that reads back as exactly `v`, in fixed notation: "187.25", "0.0000001",
// "1000000000000000". -0 prints as "0". `v` must be finite (the server never sends NaN or inf).
std::string FixedShortest(double v);

// `v` rounded to `digits` (1..17) significant digits, in fixed notation without trailing zeros:
// FixedSignificant(3401.689433333, 8) == "3401.6894". For derived values (volume, vwap) whose
// last binary digits are arithmetic noise, not data.
std::string FixedSignificant(double v, int digits);

// A table column of numbers aligned on the decimal point. Fit() every value of a batch before
// Format()ting any of them: the column keeps the most fraction digits (and integer digits) it
// has seen, so later rows line up with earlier ones; it only grows.
class DecimalColumn {
 public:
  explicit DecimalColumn(int min_width) : min_width_(min_width) {}

  // Takes `text` (FixedShortest or FixedSignificant output) into account for the layout.
  void Fit(std::string_view text);
  // `text` padded to width(): integer part right-aligned to the decimal point, fraction
  // left-aligned after it (spaces where a shorter fraction ends).
  std::string Format(std::string_view text) const;
  // Current width in characters.
  int width() const;

 private:
  int min_width_;
  int int_digits_ = 0;   // the longest integer part seen (sign included)
  int frac_digits_ = 0;  // the longest fraction seen (without the point)
};

}  // namespace tickwire::cli
