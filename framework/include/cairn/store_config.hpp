// store_config: which event store a node runs on, as its configuration names it
// ([cairn] store, data, file-sync, postgres-url, postgres-schema), and open_store(), which
// opens that store's journal and snapshot store. "file" and "memory" are built in; other
// stores are registered by the library that provides them (cairn::postgres:
// register_postgres_store()), so the core never depends on their client libraries.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/expected.hpp"
#include "cairn/journal.hpp"
#include "cairn/snapshot_store.hpp"

namespace cairn {

struct store_config {
  /// file (the embedded log in `data`), memory (tests) or postgres (at postgres_url), or
  /// any name given to register_store().
  std::string kind = "file";
  /// The file store's folder: events in <data>/events, snapshots in <data>/snapshots.
  std::string data = "./data";
  /// The file store's sync policy: always, interval or never (file_journal.hpp).
  std::string file_sync = "always";
  /// The PostgreSQL store's libpq URL or "key=value" string, and its schema.
  std::string postgres_url;
  std::string postgres_schema = "cairn";
};

/// A store a node runs on: its journal and its snapshot store (checkpoints included).
struct opened_store {
  std::shared_ptr<journal> events;
  std::shared_ptr<snapshot_store> snapshots;
};

using store_opener = std::function<expected<opened_store>(const store_config&)>;

/// Makes open_store() open stores of `kind` with `open` (replacing an earlier opener of
/// that kind). Thread-safe; call it at start, before open_store().
void register_store(const std::string& kind, store_opener open);

/// The kinds open_store() can open now: file, memory and the registered ones.
std::vector<std::string> store_kinds();

/// Opens the store `config` names. Errors: invalid_argument (an unknown kind, naming the
/// known ones; a bad file-sync), unavailable ("postgres" in a program that did not
/// register it: link cairn::postgres and call cairn::register_postgres_store()), and
/// whatever the store's own open reports (each naming what is wrong).
expected<opened_store> open_store(const store_config& config);

} // namespace cairn
