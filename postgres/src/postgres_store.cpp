// The "postgres" entry of cairn::open_store: a node config's postgres-url and
// postgres-schema opened as journal plus snapshot store.
#include "cairn/postgres_journal.hpp"
#include "cairn/store_config.hpp"

namespace cairn {

void register_postgres_store(postgres_options defaults) {
  register_store("postgres", [defaults](const store_config& c) -> expected<opened_store> {
    if (c.postgres_url.empty())
      return error{errc::invalid_argument,
                   "the postgres store needs [cairn] postgres-url (a libpq URL such as "
                   "postgresql://user@host:5432/db, or \"key=value\" pairs)"};
    auto options = defaults;
    options.schema = c.postgres_schema;
    auto events = open_postgres_journal(c.postgres_url, options);
    if (!events) return std::move(events).error();
    auto snapshots = open_postgres_snapshot_store(c.postgres_url, options);
    if (!snapshots) return std::move(snapshots).error();
    return opened_store{std::move(*events), std::move(*snapshots)};
  });
}

} // namespace cairn
