#include "commands.h"

#include <algorithm>
#include <map>

namespace ep::admin {

namespace {

enum : unsigned {
  kDb = 1u << 0,         // --db [URL]
  kKeysFile = 1u << 1,   // --keys-file FILE
  kTenantArg = 1u << 2,  // TENANT positional
  kTenantOpt = 1u << 3,  // --tenant T
  kPlanArg = 1u << 4,    // PLAN positional
  kPlanOpt = 1u << 5,    // --plan P
  kPrefixArg = 1u << 6,  // PREFIX positional
  kLabel = 1u << 7,      // --label
  kJson = 1u << 8,       // --json
  kDryRun = 1u << 9,     // --dry-run
  kQuotas = 1u << 10,    // --points-per-minute --max-series --retention-days
  kRange = 1u << 11,     // --from --to
  kRetention = 1u << 12, // --chunk
  kMigrate = 1u << 13,   // --to
  kEnable = 1u << 14,    // --enable (tenant disable)
  kRate = 1u << 15,      // --points-per-minute and --max-series only (keys file entries)
  kStall = 1u << 16,     // --stall (check)
  kNow = 1u << 17,       // --now
  kRebuild = 1u << 18,   // --since --until (rollup rebuild)
};

Status tenant_enable(const Options& o, Output& out) {
  Options copy = o;
  copy.enable = true;
  return tenant_disable(copy, out);
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"", "migrate", "Apply pending schema migrations (transaction + advisory lock)", migrate, kDb | kDryRun | kMigrate},
      {"", "check", "Check connectivity, schema version, pending migrations and archive log consumers' lag",
       check, kDb | kStall},
      {"tenant", "add", "Create a tenant (prints its tenant_id)", tenant_add, kDb | kTenantArg | kPlanOpt},
      {"tenant", "list", "List tenants", tenant_list, kDb | kJson},
      {"tenant", "disable", "Disable a tenant (its keys stop working)", tenant_disable, kDb | kTenantArg | kEnable},
      {"tenant", "enable", "Re-enable a disabled tenant", tenant_enable, kDb | kTenantArg},
      {"plan", "add", "Create a plan with quotas", plan_add, kDb | kPlanArg | kQuotas},
      {"plan", "set", "Change a plan's quotas", plan_set, kDb | kPlanArg | kQuotas},
      {"plan", "list", "List plans", plan_list, kDb | kJson},
      {"key", "issue", "Issue an API key; prints only the key, once, on stdout", key_issue,
       kDb | kKeysFile | kTenantOpt | kLabel | kRate},
      {"key", "revoke", "Revoke an API key by its prefix", key_revoke, kDb | kKeysFile | kPrefixArg},
      {"key", "list", "List API keys (prefixes, never secrets)", key_list, kDb | kKeysFile | kTenantOpt | kJson},
      {"", "usage", "Usage per tenant and day", usage, kDb | kTenantOpt | kRange | kJson},
      {"", "retention", "Delete data past each plan's retention, in bounded chunks", retention,
       kDb | kTenantOpt | kDryRun | kRetention | kNow | kJson},
      {"rollup", "rebuild", "Recompute the 1-minute/hour/day rollups of a range from the raw points", rollup_rebuild,
       kDb | kTenantOpt | kRebuild | kNow | kJson},
  };
  return all;
}

Registry::Registry(Cli& cli, Options& o) {
  CLI::App& app = cli.app();
  app.require_subcommand(1, 1);
  std::map<std::string, CLI::App*> groups;
  groups["tenant"] = app.add_subcommand("tenant", "Tenants: add, list, disable, enable")->require_subcommand(1, 1);
  groups["plan"] = app.add_subcommand("plan", "Plans and quotas: add, set, list")->require_subcommand(1, 1);
  groups["key"] = app.add_subcommand("key", "API keys: issue, revoke, list")->require_subcommand(1, 1);
  groups["rollup"] = app.add_subcommand("rollup", "Rollups: rebuild")->require_subcommand(1, 1);
  for (const Command& c : commands()) {
    CLI::App* parent = *c.group ? groups[c.group] : &app;
    CLI::App* s = parent->add_subcommand(c.name, c.summary);
    unsigned f = c.flags;
    if (f & kDb)
      s->add_option("--db", o.db, "Postgres URL; without a value $DATABASE_URL, then the libpq environment (PGHOST ...)")
          ->expected(0, 1)
          ->type_name("[URL]");
    if (f & kKeysFile)
      s->add_option("--keys-file", o.keys_file, "Use this keys file (DB-less ep-ingest --keys) instead of Postgres")
          ->type_name("FILE");
    if (f & kTenantArg) s->add_option("tenant", o.tenant, "Tenant slug")->required()->type_name("TENANT");
    if (f & kTenantOpt) {
      auto* opt = s->add_option("--tenant", o.tenant, "Tenant slug")->type_name("T");
      if (std::string(c.name) == "issue") opt->required();
    }
    if (f & kPlanArg) s->add_option("plan", o.plan, "Plan name")->required()->type_name("PLAN");
    if (f & kPlanOpt) s->add_option("--plan", o.plan, "Plan name (default: default)")->type_name("P");
    if (f & kPrefixArg) s->add_option("prefix", o.prefix, "Key prefix (or the whole key)")->required()->type_name("PREFIX");
    if (f & kLabel) s->add_option("--label", o.label, "Free-text label stored with the key");
    if (f & kJson) s->add_flag("--json", o.json, "NDJSON output, one object per row");
    if (f & kDryRun) s->add_flag("--dry-run", o.dry_run, "Report what would be done, change nothing");
    if (f & (kQuotas | kRate)) {
      s->add_option("--points-per-minute", o.points_per_minute, "Rate quota, points per minute (0 = unlimited)");
      s->add_option("--max-series", o.max_series, "Maximum series (device x metric; 0 = unlimited)");
    }
    if (f & kQuotas) {
      s->add_option("--retention-days", o.retention_days, "Keep raw points (and other data) this many days");
      s->add_option("--retention-1m-days", o.retention_1m_days, "Keep 1-minute rollups this many days (default 90)");
      s->add_option("--retention-1h-days", o.retention_1h_days, "Keep hourly rollups this many days (default 730)");
      s->add_option("--retention-1d-days", o.retention_1d_days, "Keep daily rollups this many days (default 1825)");
    }
    if (f & kRange) {
      s->add_option("--from", o.from, "First day (YYYY-MM-DD), inclusive");
      s->add_option("--to", o.to, "Last day (YYYY-MM-DD), inclusive");
    }
    if (f & kRetention) s->add_option("--chunk", o.chunk_rows, "Rows deleted per transaction");
    if (f & kNow) s->add_option("--now", o.now, "Take this as the current time (RFC 3339)");
    if (f & kRebuild) {
      s->add_option("--since", o.since, "From this time (date or RFC 3339; rounded down to a UTC day; default: the "
                    "tenant's first point or rollup, never before the plan's raw retention)");
      s->add_option("--until", o.until, "Up to this time (rounded up to a UTC day; default: the end of the tenant's "
                    "last day with points or rollups)");
    }
    if (f & kStall)
      s->add_option("--stall", o.stall, "Warn about an archive log consumer (ep-load --follow) that is behind "
                    "and has not advanced, or has not reported, for this long (default 5m)")
          ->type_name("DURATION");
    if (f & kMigrate) s->add_option("--to", o.to_version, "Stop at this schema version (default: latest)");
    subs_.emplace_back(s, &c);
  }
}

const Command* Registry::selected() const {
  for (const auto& [app, cmd] : subs_)
    if (app->parsed()) return cmd;
  return nullptr;
}

std::string suggest(const std::string& word, const std::vector<std::string>& known) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = 3;
  for (const auto& k : known) {
    size_t d = dist(word, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

}  // namespace ep::admin
