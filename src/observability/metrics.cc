#include "observability/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cassert>
#include <limits>
#include <sstream>

namespace tickwire::obs {

struct Exposition::Impl {
  std::string prefix;
  std::vector<prometheus::MetricFamily> families;

  void Start(std::string name, std::string help, prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = prefix.empty() ? std::move(name) : prefix + name;
    f.help = std::move(help);
    f.type = type;
    families.push_back(std::move(f));
  }

  prometheus::ClientMetric& Add(Labels labels) {
    assert(!families.empty());
    auto& m = families.back().metric.emplace_back();
    for (auto& [k, v] : labels) m.label.push_back({std::move(k), std::move(v)});
    return m;
  }
};

Exposition::Exposition(std::string prefix) : impl_(new Impl{std::move(prefix), {}}) {}
Exposition::~Exposition() { delete impl_; }

void Exposition::CounterFamily(std::string name, std::string help) {
  impl_->Start(std::move(name), std::move(help), prometheus::MetricType::Counter);
}

void Exposition::GaugeFamily(std::string name, std::string help) {
  impl_->Start(std::move(name), std::move(help), prometheus::MetricType::Gauge);
}

void Exposition::HistogramFamily(std::string name, std::string help) {
  impl_->Start(std::move(name), std::move(help), prometheus::MetricType::Histogram);
}

void Exposition::Sample(double value, Labels labels) {
  auto& m = impl_->Add(std::move(labels));
  if (impl_->families.back().type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

void Exposition::Sample(const HistogramSnapshot& h, Labels labels) {
  auto& m = impl_->Add(std::move(labels));
  m.histogram.sample_count = h.cumulative.empty() ? 0 : h.cumulative.back();
  m.histogram.sample_sum = h.sum;
  for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
    m.histogram.bucket.push_back({h.cumulative[i], h.upper_bounds[i]});
  }
  // prometheus-cpp expects the +Inf bucket to be listed too.
  m.histogram.bucket.push_back({m.histogram.sample_count, std::numeric_limits<double>::infinity()});
}

std::string Exposition::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->families);
  return out.str();
}

}  // namespace tickwire::obs
