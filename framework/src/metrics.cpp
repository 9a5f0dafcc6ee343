#include "cairn/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cairn::metrics {

size_t this_thread_shard() noexcept {
  static std::atomic<size_t> next{0};
  thread_local size_t shard = next.fetch_add(1, std::memory_order_relaxed) % shard_count;
  return shard;
}

uint64_t counter::value() const noexcept {
  uint64_t total = 0;
  for (auto& s : shards_) total += s.value.load(std::memory_order_relaxed);
  return total;
}

histogram::histogram(buckets b) : buckets_(b), shards_(new shard[shard_count]()) {
  buckets_.count = std::min(buckets_.count, max_buckets);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.counts.assign(buckets_.count + 1, 0);
  for (size_t i = 0; i < shard_count; ++i) {
    auto& sh = shards_[i];
    for (unsigned b = 0; b <= buckets_.count; ++b)
      s.counts[b] += sh.counts[b].load(std::memory_order_relaxed);
    s.sum += sh.sum.load(std::memory_order_relaxed);
  }
  for (auto c : s.counts) s.count += c;
  return s;
}

namespace {

const char* type_name(kind k) {
  switch (k) {
    case kind::counter: return "counter";
    case kind::gauge: return "gauge";
    case kind::histogram: return "histogram";
  }
  return "untyped";
}

/// HELP text: backslash and newline escaped. Label values: also the double quote.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else out += c;
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    // Whole numbers print as integers (exactly, up to 2^53); others with full precision.
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (std::snprintf(buf, sizeof buf, "%.15g", v); std::strtod(buf, nullptr) != v)
      std::snprintf(buf, sizeof buf, "%.17g", v); // the shortest that reads back exactly
    out += buf;
  }
}

} // namespace

void text_writer::family(std::string_view name, std::string_view help, kind k) {
  name_.assign(name);
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(k);
  out_ += '\n';
}

void text_writer::line(std::string_view suffix, const labels& l,
                       const std::pair<std::string, std::string>* extra, double value) {
  out_ += name_;
  out_ += suffix;
  if (!l.empty() || extra) {
    out_ += '{';
    bool first = true;
    auto add = [&](const std::pair<std::string, std::string>& kv) {
      if (!first) out_ += ',';
      first = false;
      out_ += kv.first;
      out_ += "=\"";
      append_escaped(out_, kv.second, true);
      out_ += '"';
    };
    for (auto& kv : l) add(kv);
    if (extra) add(*extra);
    out_ += '}';
  }
  out_ += ' ';
  append_number(out_, value);
  out_ += '\n';
}

void text_writer::sample(const labels& l, double value) {
  line({}, l, nullptr, value);
}

void text_writer::sample(const labels& l, const histogram::snapshot& s, const buckets& b) {
  uint64_t cumulative = 0;
  std::pair<std::string, std::string> le{"le", {}};
  for (unsigned i = 0; i < b.count && i < s.counts.size(); ++i) {
    cumulative += s.counts[i];
    le.second.clear();
    append_number(le.second, std::ldexp(1.0, static_cast<int>(b.first_exponent + i)) * b.unit);
    line("_bucket", l, &le, double(cumulative));
  }
  le.second = "+Inf";
  line("_bucket", l, &le, double(s.count));
  line("_sum", l, nullptr, double(s.sum) * b.unit);
  line("_count", l, nullptr, double(s.count));
}

registry::entry& registry::find_or_add(std::string name, std::string help, kind k, labels l,
                                       bool& added) {
  added = false;
  auto f = std::find_if(families_.begin(), families_.end(),
                        [&](const family& x) { return x.name == name; });
  if (f == families_.end()) {
    families_.push_back(family{std::move(name), std::move(help), k, {}});
    f = std::prev(families_.end());
  }
  for (auto& e : f->entries)
    if (e.l == l) return e;
  added = true;
  f->entries.push_back(entry{std::move(l), nullptr, nullptr, nullptr});
  return f->entries.back();
}

counter& registry::add_counter(std::string name, std::string help, labels l) {
  std::lock_guard<std::mutex> guard{mutex_};
  bool added;
  auto& e = find_or_add(std::move(name), std::move(help), kind::counter, std::move(l), added);
  if (!e.c) e.c = std::make_unique<counter>();
  return *e.c;
}

gauge& registry::add_gauge(std::string name, std::string help, labels l) {
  std::lock_guard<std::mutex> guard{mutex_};
  bool added;
  auto& e = find_or_add(std::move(name), std::move(help), kind::gauge, std::move(l), added);
  if (!e.g) e.g = std::make_unique<gauge>();
  return *e.g;
}

histogram& registry::add_histogram(std::string name, std::string help, buckets b, labels l) {
  std::lock_guard<std::mutex> guard{mutex_};
  bool added;
  auto& e = find_or_add(std::move(name), std::move(help), kind::histogram, std::move(l), added);
  if (!e.h) e.h = std::make_unique<histogram>(b);
  return *e.h;
}

void registry::render(text_writer& out) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& f : families_) {
    out.family(f.name, f.help, f.k);
    for (auto& e : f.entries) {
      if (f.k == kind::counter && e.c) out.sample(e.l, double(e.c->value()));
      else if (f.k == kind::gauge && e.g) out.sample(e.l, double(e.g->value()));
      else if (f.k == kind::histogram && e.h) out.sample(e.l, e.h->read(), e.h->layout());
    }
  }
}

std::string registry::render() const {
  text_writer w;
  render(w);
  return w.take();
}

} // namespace cairn::metrics
