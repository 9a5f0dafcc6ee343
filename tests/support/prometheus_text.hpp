// A strict reader of Prometheus text exposition format 0.0.4, for tests: it checks
// the format (HELP/TYPE before each family's samples, names, label syntax, numbers,
// cumulative histogram buckets ending in +Inf equal to _count) and returns the
// samples so tests can look values up.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cairn::test {

struct prometheus_sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct prometheus_text {
  std::map<std::string, std::string> types; ///< family -> counter|gauge|histogram
  std::map<std::string, std::string> help;
  std::vector<prometheus_sample> samples;
  std::vector<std::string> problems; ///< empty if the text is well-formed

  /// The value of `name` with exactly `labels`; NaN if absent.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (auto& s : samples)
      if (s.name == name && s.labels == labels) return s.value;
    return std::nan("");
  }
  bool has(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    return !std::isnan(value(name, labels));
  }
};

namespace detail {

inline bool valid_name(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) return false;
  return true;
}

inline bool parse_number(const std::string& s, double& v) {
  if (s == "+Inf") return v = INFINITY, true;
  if (s == "-Inf") return v = -INFINITY, true;
  if (s == "NaN") return v = NAN, true;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

/// The family a sample belongs to: the name itself, or for histograms its base.
inline std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s{suffix};
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      auto base = name.substr(0, name.size() - s.size());
      auto t = types.find(base);
      if (t != types.end() && t->second == "histogram") return base;
    }
  }
  return {};
}

} // namespace detail

inline prometheus_text parse_prometheus(const std::string& text) {
  prometheus_text out;
  std::istringstream in{text};
  std::string line, current;
  std::set<std::string> closed; // families whose samples are over
  size_t number = 0;
  auto bad = [&](const std::string& why) {
    out.problems.push_back("line " + std::to_string(number) + ": " + why + ": " + line);
  };
  if (!text.empty() && text.back() != '\n') out.problems.push_back("no final newline");
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words{line};
      std::string hash, what, name;
      words >> hash >> what >> name;
      if (what != "HELP" && what != "TYPE") continue; // a comment
      if (!detail::valid_name(name)) { bad("bad metric name"); continue; }
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (name != current) {
        if (!current.empty()) closed.insert(current);
        if (closed.count(name)) bad("family appears twice");
        current = name;
      }
      if (what == "HELP") {
        if (out.help.count(name)) bad("second HELP");
        out.help[name] = rest;
      } else {
        if (out.types.count(name)) bad("second TYPE");
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped")
          bad("unknown type");
        out.types[name] = rest;
      }
      continue;
    }
    prometheus_sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!detail::valid_name(s.name)) { bad("bad sample name"); continue; }
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          bad("bad label");
          break;
        }
        auto label = line.substr(i, eq - i);
        if (!detail::valid_name(label)) bad("bad label name");
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            char c = line[++j];
            value += c == 'n' ? '\n' : c;
          } else {
            value += line[j];
          }
        }
        if (j >= line.size()) { bad("unterminated label value"); break; }
        if (s.labels.count(label)) bad("label twice");
        s.labels[label] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) { bad("unterminated labels"); continue; }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') { bad("no value"); continue; }
    auto value = line.substr(i + 1);
    if (auto sp = value.find(' '); sp != std::string::npos) value = value.substr(0, sp); // timestamp
    if (!detail::parse_number(value, s.value)) { bad("bad value"); continue; }
    auto family = detail::family_of(s.name, out.types);
    if (family.empty()) bad("sample before its TYPE");
    else if (family != current) bad("sample outside its family's block");
    else if (out.types[family] == "counter" && (s.value < 0 || std::isnan(s.value)))
      bad("negative counter");
    out.samples.push_back(std::move(s));
  }
  // Histograms: per label set, buckets ascending in le and cumulative, +Inf last and
  // equal to _count.
  for (auto& [family, type] : out.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> series;
    for (auto& s : out.samples) {
      if (s.name != family + "_bucket") continue;
      auto labels = s.labels;
      double le;
      if (!labels.count("le") || !detail::parse_number(labels["le"], le)) {
        out.problems.push_back(family + ": a bucket without a numeric le");
        continue;
      }
      labels.erase("le");
      series[labels].emplace_back(le, s.value);
    }
    for (auto& [labels, buckets] : series) {
      for (size_t k = 1; k < buckets.size(); ++k)
        if (!(buckets[k].first > buckets[k - 1].first) || buckets[k].second < buckets[k - 1].second)
          out.problems.push_back(family + ": buckets not ascending and cumulative");
      if (buckets.empty() || !std::isinf(buckets.back().first))
        out.problems.push_back(family + ": no +Inf bucket");
      else if (out.value(family + "_count", labels) != buckets.back().second)
        out.problems.push_back(family + ": +Inf bucket differs from _count");
      if (!out.has(family + "_sum", labels)) out.problems.push_back(family + ": no _sum");
    }
  }
  return out;
}

} // namespace cairn::test
