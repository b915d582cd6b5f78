#pragma once
// Connection helpers shared by the ep-admin commands.
#include <string>

#include "admin.h"
#include "ep/pg.h"

namespace ep::admin {

// Connects per --db (URL, $DATABASE_URL, libpq environment); with need_schema, also
// checks that the schema has been migrated (at least to min_version).
Result<pg::Conn> open_db(const Options& o, bool need_schema, int min_version = 1);
// Plans' rollup retention and the rollup tables: migration 0006.
inline constexpr int kRollupSchema = 6;
// tenant slug -> tenant_id; kNotFound naming the slug when unknown.
Result<std::string> tenant_id(pg::Conn& c, const std::string& slug);

}  // namespace ep::admin
