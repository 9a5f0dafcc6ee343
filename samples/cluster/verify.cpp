// cluster_bank_verify: checks what a run of the cluster sample left in the shared
// PostgreSQL store against what its members acknowledged and what their read models show.
//
//   cluster_bank_verify --postgres-url URL [--postgres-schema S] [--acks FILE]... [--status FILE]...
//
// (a) no idempotency key is on two stored deposits (a retried command stored twice);
// (b) every deposit in an ack file ("<key> <account> <amount> <version> <position>" lines,
//     written by cluster_bank_node's driver) is stored exactly once, on that account's
//     stream, with that amount, version and position;
// (c) the fold of the store (every account's balance) has the digest that each status
//     file's projection shows, and each projection has reached the last account event.
// Exit code 0 when all of it holds, 1 when something does not, 2 on a usage error.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <cairn/postgres_journal.hpp>
#include <cairn/variant_codec.hpp>

#include "balances_digest.hpp"
#include "bank/account.hpp"

namespace {

struct arguments {
  std::string url, schema = "cairn";
  std::vector<std::string> acks, statuses;
};

int usage(const std::string& why) {
  if (!why.empty()) std::cerr << "cluster_bank_verify: " << why << "\n";
  std::cerr << "usage: cluster_bank_verify --postgres-url URL [--postgres-schema S]"
               " [--acks FILE]... [--status FILE]...\n";
  return 2;
}

/// Parses "--name value" and "--name=value"; false with `why` set on a bad command line.
bool parse(int argc, char** argv, arguments& a, std::string& why) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    std::string* single = nullptr;
    std::vector<std::string>* many = nullptr;
    if (arg == "--postgres-url") single = &a.url;
    else if (arg == "--postgres-schema") single = &a.schema;
    else if (arg == "--acks") many = &a.acks;
    else if (arg == "--status") many = &a.statuses;
    else {
      why = arg == "-h" || arg == "--help" ? "" : "unknown argument '" + arg + "'";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        why = arg + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    if (single) *single = value;
    else many->push_back(value);
  }
  if (a.url.empty()) why = "--postgres-url is required";
  return why.empty();
}

/// A stored deposit, found by its idempotency key.
struct stored_deposit {
  std::string account;
  int64_t amount = 0;
  uint64_t version = 0, position = 0;
};

/// What the store holds, read back whole.
struct store_view {
  uint64_t events = 0, account_events = 0, deposits = 0, unkeyed_deposits = 0;
  uint64_t head = 0;         ///< position of the last event
  uint64_t account_head = 0; ///< position of the last account event (the ledger's last)
  int64_t total = 0;
  std::unordered_map<std::string, int64_t> balances;
  std::unordered_map<std::string, stored_deposit> by_key;
  std::vector<std::string> duplicate_keys; ///< on two or more stored deposits
  uint64_t undecodable = 0;
};

bool read_store(const arguments& a, store_view& v) {
  cairn::postgres_options options;
  options.schema = a.schema;
  options.follow_external = false;
  options.read_connections = 1;
  options.read_ahead_chunks = 0;
  auto store = cairn::open_postgres_journal(a.url, options);
  if (!store) {
    std::cerr << "cannot open the store: " << store.error().describe() << "\n";
    return false;
  }
  for (uint64_t from = 1;;) {
    auto chunk = (*store)->read_all(from, 10000);
    if (!chunk) {
      std::cerr << "read_all from " << from << " failed: " << chunk.error().describe() << "\n";
      return false;
    }
    if (chunk->empty()) return true;
    for (auto& e : *chunk) {
      ++v.events;
      v.head = e.position;
      if (e.stream.category != bank::account::category) continue;
      ++v.account_events;
      v.account_head = e.position;
      auto ev = cairn::variant_codec<bank::account::event_type>::decode(e);
      if (!ev) {
        if (++v.undecodable <= 5)
          std::cerr << "undecodable event at " << e.position << ": " << ev.error().describe() << "\n";
        continue;
      }
      auto& balance = v.balances[e.stream.id]; // opened: 0
      int64_t delta = 0;
      if (auto d = std::get_if<bank::deposited>(&*ev)) delta = d->amount;
      if (auto w = std::get_if<bank::withdrawn>(&*ev)) delta = -w->amount;
      balance += delta;
      v.total += delta;
      if (!std::holds_alternative<bank::deposited>(*ev)) continue;
      ++v.deposits;
      auto* key = e.meta.find("idempotency-key");
      if (!key) {
        ++v.unkeyed_deposits;
        continue;
      }
      auto [at, fresh] = v.by_key.emplace(*key, stored_deposit{e.stream.id, delta, e.version, e.position});
      if (!fresh) {
        v.duplicate_keys.push_back(*key);
        if (v.duplicate_keys.size() <= 10)
          std::cout << "DUPLICATE: key " << *key << " stored at positions " << at->second.position
                    << " and " << e.position << "\n";
      }
    }
    from = chunk->back().position + 1;
  }
}

/// Checks one ack file against the store; returns the number of problems.
size_t check_acks(const std::string& path, const store_view& v, std::map<std::string, std::string>& seen,
                  size_t& checked) {
  std::ifstream in{path};
  if (!in) {
    std::cout << "FAIL: cannot read ack file " << path << "\n";
    return 1;
  }
  size_t problems = 0, lines = 0;
  auto problem = [&](const std::string& what) {
    if (++problems <= 10) std::cout << "FAIL: " << path << ":" << lines << ": " << what << "\n";
  };
  for (std::string line; std::getline(in, line);) {
    ++lines;
    std::istringstream fields{line};
    std::string key, account, rest;
    int64_t amount = 0;
    uint64_t version = 0, position = 0;
    if (!(fields >> key >> account >> amount >> version >> position) || (fields >> rest)) {
      problem("malformed line '" + line + "'");
      continue;
    }
    ++checked;
    if (auto [at, fresh] = seen.emplace(key, path); !fresh) {
      problem("key " + key + " acknowledged again (first in " + at->second + ")");
      continue;
    }
    auto it = v.by_key.find(key);
    if (it == v.by_key.end()) {
      problem("acknowledged deposit " + key + " is not in the store");
      continue;
    }
    auto& s = it->second;
    if (s.account != account || s.amount != amount || s.version != version || s.position != position)
      problem("deposit " + key + " acknowledged as " + account + " " + std::to_string(amount) +
              " v" + std::to_string(version) + " @" + std::to_string(position) + " but stored as " +
              s.account + " " + std::to_string(s.amount) + " v" + std::to_string(s.version) + " @" +
              std::to_string(s.position));
  }
  std::cout << "acks " << path << ": " << lines << " lines, " << problems << " problems\n";
  return problems;
}

/// Checks one member's status file against the fold; returns the number of problems.
size_t check_status(const std::string& path, const store_view& v, const std::string& digest) {
  nlohmann::json j;
  try {
    std::ifstream in{path};
    if (!in) throw std::runtime_error("cannot read it");
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    std::cout << "FAIL: status " << path << ": " << e.what() << "\n";
    return 1;
  }
  auto name = j.value("name", std::string{"?"});
  if (!j.contains("projection") || !j["projection"].is_object()) {
    std::cout << "FAIL: status " << path << " (" << name << ") has no projection\n";
    return 1;
  }
  auto& p = j["projection"];
  auto position = p.value("position", uint64_t{0});
  auto their_digest = p.value("digest", std::string{});
  auto events = p.value("events", uint64_t{0});
  auto total = p.value("total", int64_t{0});
  auto accounts = p.value("accounts", uint64_t{0});
  bool ok = their_digest == digest && position == v.account_head && events == v.account_events &&
            total == v.total && accounts == v.balances.size();
  std::cout << (ok ? "match" : "FAIL: mismatch") << ": " << name << " projection at " << position
            << " (head " << v.account_head << "), digest " << their_digest << ", " << events
            << " events, total " << total << ", " << accounts << " accounts\n";
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  arguments a;
  if (std::string why; !parse(argc, argv, a, why)) return usage(why);
  store_view v;
  if (!read_store(a, v)) return 1;
  auto digest = cluster_sample::balances_digest(v.balances);
  std::cout << "store: " << v.events << " events (head " << v.head << "), " << v.account_events
            << " account events, " << v.balances.size() << " accounts, total " << v.total
            << ", digest " << digest << "\n"
            << "deposits: " << v.deposits << " stored, " << v.by_key.size() << " distinct keys, "
            << v.duplicate_keys.size() << " duplicates, " << v.unkeyed_deposits << " without a key\n";
  size_t problems = v.duplicate_keys.size() + v.undecodable;
  if (v.undecodable) std::cout << "FAIL: " << v.undecodable << " undecodable account events\n";

  std::map<std::string, std::string> acked; // key -> ack file
  size_t checked = 0;
  for (auto& f : a.acks) problems += check_acks(f, v, acked, checked);
  size_t unacked = 0;
  for (auto& [key, stored] : v.by_key) unacked += acked.count(key) == 0;
  std::cout << "acked deposits checked: " << checked << "; stored but not acknowledged: " << unacked
            << " (in flight when a member died, or not in the ack files given)\n";
  for (auto& f : a.statuses) problems += check_status(f, v, digest);

  std::cout << "verification: " << (problems == 0 ? "PASSED" : "FAILED (" + std::to_string(problems) + " problems)")
            << "\n";
  return problems == 0 ? 0 : 1;
}
