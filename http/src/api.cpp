// The HTTP API's routes (docs/http.md): commands, named queries, health, readiness,
// the event stream's parameters and static files.
#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace cairn::http {
namespace {

using json = nlohmann::json;

api_response json_response(unsigned status, const json& body) {
  return {status, "application/json",
          body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
}

api_response not_found(std::string_view what) { return error_response(404, "not_found", what); }

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_json_content_type(std::string_view ct) {
  auto semi = ct.find(';');
  auto media = lower(ct.substr(0, semi));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  return media == "application/json";
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

/// Parses "a=1&b=x%20y"; nullopt on a malformed escape. A repeated key keeps
/// every value, comma-joined.
std::optional<query_params> parse_query(std::string_view q) {
  query_params out;
  if (q.empty()) return out;
  for (auto& part : split(q, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto key = percent_decode(std::string_view{part}.substr(0, eq), true);
    auto value = percent_decode(
      eq == std::string::npos ? std::string_view{} : std::string_view{part}.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    auto [it, added] = out.emplace(*key, *value);
    if (!added) it->second += "," + *value;
  }
  return out;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

api_response command_reply_response(const expected<command_reply>& r) {
  if (!r) return error_response(r.error());
  // Formatted directly (the hot path); the same text json{...}.dump() gives.
  std::string body;
  body.reserve(64);
  body.append("{\"events\":").append(std::to_string(r->events));
  body.append(",\"position\":").append(std::to_string(r->position));
  body.append(",\"version\":").append(std::to_string(r->version)).append("}\n");
  return {200, "application/json", std::move(body)};
}

void handle_command(http_server::impl& s, const std::string& category, const std::string& id,
                    const api_request& req, responder& respond) {
  if (!is_json_content_type(req.content_type))
    return respond(error_response(415, "unsupported_media_type",
                                  "a command's body must be application/json, not \"" +
                                    req.content_type + "\""));
  auto body = json::parse(req.body, nullptr, false);
  if (body.is_discarded())
    return respond(error_response(400, "invalid_argument", "the body is not valid JSON"));
  if (!body.is_object())
    return respond(error_response(400, "invalid_argument", "the body must be a JSON object"));
  uint64_t want_version = expected_version::any;
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() == "type" || it.key() == "data") continue;
    if (it.key() == "expected_version" && it->is_number_unsigned()) {
      want_version = it->get<uint64_t>();
      continue;
    }
    return respond(error_response(
      400, "invalid_argument",
      it.key() == "expected_version"
        ? "expected_version must be a non-negative integer"
        : "unknown key \"" + it.key() + "\" (a command has type, data, expected_version)"));
  }
  auto type = body.find("type");
  if (type == body.end() || !type->is_string())
    return respond(error_response(400, "invalid_argument", "missing string \"type\""));
  auto data = body.find("data");
  json empty = json::object();
  const json& payload = data == body.end() ? empty : *data;
  auto parser = s.parsers.find(category);
  if (parser == s.parsers.end())
    return respond(not_found("no aggregate category \"" + category + "\""));
  if (auto ok = stream_id{category, id}.validate(); !ok) return respond(error_response(ok.error()));
  metadata meta;
  meta.correlation_id = req.correlation_id;
  meta.causation_id = req.causation_id;
  if (!req.idempotency_key.empty()) meta.entries.emplace_back("idempotency-key", req.idempotency_key);
  auto cmd = parser->second(id, type->get<std::string>(), payload, std::move(meta));
  if (!cmd) return respond(error_response(cmd.error()));
  cmd->expected_version = want_version;
  s.submit_command(std::move(*cmd), [respond = std::move(respond)](
                                           expected<command_reply> r) {
    respond(command_reply_response(r));
  });
}

void handle_query(http_server::impl& s, const std::string& name, std::string_view query,
                  responder& respond) {
  auto runner = s.queries.find(name);
  if (runner == s.queries.end()) return respond(not_found("no query named \"" + name + "\""));
  auto params = parse_query(query);
  if (!params) return respond(error_response(400, "invalid_argument", "malformed query string"));
  uint64_t at_least = 0;
  if (auto it = params->find("at_least"); it != params->end()) {
    auto v = parse_u64(it->second);
    if (!v) return respond(error_response(400, "invalid_argument", "at_least must be a position"));
    at_least = *v;
    params->erase(it);
  }
  runner->second(s.target, *params, at_least,
                 [respond = std::move(respond)](expected<json> r) {
                   if (!r) return respond(error_response(r.error()));
                   respond(json_response(200, *r));
                 });
}

/// Answers once every watched projection has reached `head` (or failed to).
struct readiness {
  std::mutex m;
  size_t left;
  json projections = json::object();
  bool ready = true;
  uint64_t head;
  responder respond;
  readiness(size_t n, uint64_t h, responder r) : left(n), head(h), respond(std::move(r)) {}
  void report(const std::string& name, const error& e) {
    std::unique_lock<std::mutex> g{m};
    projections[name] = e ? e.describe() : "caught up";
    if (e) ready = false;
    if (--left > 0) return;
    json body{{"ready", ready}, {"head", head}, {"store", "open"}, {"projections", projections}};
    g.unlock();
    respond(json_response(ready ? 200 : 503, body));
  }
};

struct ready_probe final : query_call {
  std::shared_ptr<readiness> r;
  std::string name;
  bool done = false;
  ready_probe(std::shared_ptr<readiness> rr, std::string n) : r(std::move(rr)), name(std::move(n)) {}
  void run(const void*) override { finish({}); }
  void fail(const error& why) override { finish(why); }
  ~ready_probe() override { finish(error{errc::unavailable, "projection stopped"}); }
  void finish(const error& e) {
    if (done) return;
    done = true;
    r->report(name, e);
  }
};

void handle_ready(http_server::impl& s, responder& respond) {
  auto& store = *s.target.store();
  auto head = store.head_position();
  if (head > 0) {
    auto probe = store.read_all(head, 1);
    if (!probe)
      return respond(json_response(503, json{{"ready", false},
                                             {"store", probe.error().describe()}}));
  }
  if (s.watched_projections.empty())
    return respond(json_response(200, json{{"ready", true}, {"head", head}, {"store", "open"},
                                           {"projections", json::object()}}));
  auto r = std::make_shared<readiness>(s.watched_projections.size(), head, std::move(respond));
  auto timeout = static_cast<int64_t>(s.opts.ready_timeout.count());
  for (auto& name : s.watched_projections)
    s.target.send_query(name, query_job{std::make_shared<ready_probe>(r, name), head, timeout});
}

const char* mime_type(std::string_view path) {
  auto dot = path.rfind('.');
  auto ext = lower(dot == std::string_view::npos ? "" : path.substr(dot + 1));
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

api_response static_file(const http_server::impl& s, const std::string& path) {
  // Only plain names below static_dir: no "..", no hidden files, no backslashes.
  std::string rel = path == "/" ? "index.html" : path.substr(1);
  for (auto& seg : split(rel, '/'))
    if (seg.empty() || seg[0] == '.' || seg.find('\\') != std::string::npos ||
        seg.find('\0') != std::string::npos)
      return not_found("no route " + path);
  std::ifstream in{s.opts.static_dir + "/" + rel, std::ios::binary};
  if (!in) return not_found("no route " + path);
  std::ostringstream data;
  data << in.rdbuf();
  if (!in && !in.eof()) return not_found("no route " + path);
  return {200, mime_type(rel), data.str()};
}

} // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

unsigned status_of(errc code) {
  switch (code) {
    case errc::ok: return 200;
    case errc::rejected: return 422;
    case errc::conflict: return 409;
    case errc::not_found: return 404;
    case errc::timeout: return 504;
    case errc::unavailable: return 503;
    case errc::fenced: return 503;
    case errc::invalid_argument: return 400;
    case errc::corrupt: return 500;
  }
  return 500;
}

api_response error_response(unsigned status, std::string_view code, std::string_view message) {
  return json_response(status, json{{"error", code}, {"message", message}});
}

api_response error_response(const error& e) {
  return error_response(status_of(e.code()), to_string(e.code()), e.message());
}

std::optional<sse_request> route(http_server::impl& s, api_request req, responder respond) {
  auto qmark = req.target.find('?');
  std::string_view raw_path = std::string_view{req.target}.substr(0, qmark);
  std::string_view query =
    qmark == std::string::npos ? std::string_view{} : std::string_view{req.target}.substr(qmark + 1);
  auto segments = split(raw_path, '/');
  // segments[0] is the empty string before the leading '/'.
  std::vector<std::string> seg;
  for (size_t i = 1; i < segments.size(); ++i) {
    auto d = percent_decode(segments[i], false);
    if (!d) {
      respond(error_response(400, "invalid_argument", "malformed escape in the path"));
      return std::nullopt;
    }
    seg.push_back(std::move(*d));
  }
  auto method_not_allowed = [&](const char* allowed) {
    respond(error_response(405, "method_not_allowed",
                           std::string{"use "} + allowed + " on " + std::string{raw_path}));
    return std::nullopt;
  };
  const bool get = req.method == "GET";
  const auto n = seg.size();
  const std::string first = n > 0 ? seg[0] : "";
  if (n == 3 && first == "commands") {
    if (req.method != "POST") return method_not_allowed("POST");
    handle_command(s, seg[1], seg[2], req, respond);
    return std::nullopt;
  }
  if (n == 2 && first == "queries") {
    if (!get) return method_not_allowed("GET");
    handle_query(s, seg[1], query, respond);
    return std::nullopt;
  }
  if (n == 1 && (first == "health" || first == "ready" || first == "events" ||
                 first == "metrics")) {
    if (!get) return method_not_allowed("GET");
    if (first == "metrics") {
      s.run_blocking([&s, respond = std::move(respond)] {
        respond({200, "text/plain; version=0.0.4; charset=utf-8", s.target.metrics_text()});
      });
      return std::nullopt;
    }
    if (first == "health") {
      respond(json_response(200, json{{"status", "ok"}}));
      return std::nullopt;
    }
    if (first == "ready") {
      handle_ready(s, respond);
      return std::nullopt;
    }
    auto params = parse_query(query);
    if (!params) {
      respond(error_response(400, "invalid_argument", "malformed query string"));
      return std::nullopt;
    }
    sse_request sse;
    sse.from = s.target.store()->head_position() + 1; // live only, unless asked
    if (auto it = params->find("from"); it != params->end()) {
      auto v = parse_u64(it->second);
      if (!v) {
        respond(error_response(400, "invalid_argument", "from must be a position"));
        return std::nullopt;
      }
      sse.from = std::max<uint64_t>(*v, 1);
    }
    if (!req.last_event_id.empty()) {
      auto v = parse_u64(req.last_event_id);
      if (!v) {
        respond(error_response(400, "invalid_argument", "Last-Event-ID must be a position"));
        return std::nullopt;
      }
      sse.from = *v + 1;
    }
    if (auto it = params->find("category"); it != params->end())
      for (auto& c : split(it->second, ','))
        if (!c.empty()) sse.categories.push_back(c);
    return sse;
  }
  if (!s.opts.static_dir.empty() && first != "commands" && first != "queries") {
    if (!get) return method_not_allowed("GET");
    auto path = percent_decode(raw_path, false);
    respond(path ? static_file(s, *path) : not_found("no route"));
    return std::nullopt;
  }
  respond(not_found("no route " + std::string{raw_path}));
  return std::nullopt;
}

} // namespace cairn::http
