-- EdgePulse schema, version 1. Applied by `ep-admin migrate` inside one transaction
-- under an advisory lock; see docs/schema.md for what every column means and why each
-- index exists. Every table holding tenant data has tenant_id first in its primary key
-- (docs/architecture.md §5, §11: ready for sharding by tenant_id).

-- Plans: quotas, shared by tenants. Not tenant data.
CREATE TABLE plans (
  name              text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._:/-]{1,64}$'),
  points_per_minute bigint  NOT NULL DEFAULT 60000 CHECK (points_per_minute >= 0),  -- 0 = unlimited
  max_series        integer NOT NULL DEFAULT 1000  CHECK (max_series >= 0),         -- 0 = unlimited
  retention_days    integer NOT NULL DEFAULT 30    CHECK (retention_days > 0),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO plans (name) VALUES ('default');

CREATE TABLE tenants (
  tenant_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[A-Za-z0-9._:/-]{1,128}$'),
  plan        text NOT NULL DEFAULT 'default' REFERENCES plans (name) ON UPDATE CASCADE,
  disabled    boolean NOT NULL DEFAULT false,
  disabled_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  prefix       text NOT NULL CHECK (length(prefix) = 8),
  hash         text NOT NULL,                 -- hex HMAC-SHA256(pepper, key)
  label        text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  PRIMARY KEY (tenant_id, prefix)
);
-- Authentication looks a presented key up by its prefix alone.
CREATE UNIQUE INDEX api_keys_prefix ON api_keys (prefix);

CREATE TABLE devices (
  tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  device_id    uuid NOT NULL DEFAULT gen_random_uuid(),
  external_id  text NOT NULL,                 -- the name devices send (device_external_id)
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, device_id),
  UNIQUE (tenant_id, external_id)
);

-- A metric of one device: one time series. metric_id is the series id.
CREATE TABLE metrics (
  tenant_id         uuid NOT NULL,
  metric_id         uuid NOT NULL DEFAULT gen_random_uuid(),
  device_id         uuid NOT NULL,
  name              text NOT NULL,
  unit              text NOT NULL DEFAULT '',
  expected_interval interval,                 -- NULL = infer from the data
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, metric_id),
  UNIQUE (tenant_id, device_id, name),
  FOREIGN KEY (tenant_id, device_id) REFERENCES devices ON DELETE CASCADE
);

CREATE TABLE ingest_batches (
  tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  batch_id    uuid NOT NULL,
  device_id   uuid,
  received_at timestamptz NOT NULL,
  source      text NOT NULL DEFAULT '',
  sha256      text NOT NULL DEFAULT '',
  points      integer NOT NULL DEFAULT 0,
  archive     text,                          -- archive URI of the raw payload
  status      text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'loaded', 'failed')),
  error       text,
  loaded_at   timestamptz,
  PRIMARY KEY (tenant_id, batch_id)
);
CREATE INDEX ingest_batches_received ON ingest_batches (tenant_id, received_at DESC);

-- Points. Unique per (tenant, series, ts): the per-point idempotency of ep-load.
-- No foreign key to metrics: checking one per row would halve COPY speed, and the
-- only writer (ep-load) creates the metric first. Not partitioned (docs/schema.md).
CREATE TABLE datapoints (
  tenant_id uuid NOT NULL,
  metric_id uuid NOT NULL,
  ts        timestamptz NOT NULL,
  value     double precision NOT NULL,
  PRIMARY KEY (tenant_id, metric_id, ts)
);
-- No other index: "all series of a tenant since T" is answered through the primary
-- key, one range scan per series (metrics CROSS JOIN LATERAL datapoints, see
-- docs/schema.md). A BRIN index on ts was measured to cost ~30% of load speed.

CREATE TABLE features (
  tenant_id    uuid NOT NULL,
  metric_id    uuid NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  n            integer NOT NULL,
  expected     integer NOT NULL DEFAULT 0,
  features     jsonb NOT NULL,                -- {"mean":…, "std":…, "stuck":false, …}
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, metric_id, window_end, window_start)
);

CREATE TABLE models (
  tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  name        text NOT NULL,                  -- "meter-001/voltage" or a group name
  version     integer NOT NULL CHECK (version > 0),
  metric_id   uuid,                           -- the series, NULL for a group model
  kind        text NOT NULL DEFAULT 'iforest',
  artefact    bytea NOT NULL,                 -- self-describing artefact bytes
  sha256      text NOT NULL,                  -- hex SHA-256 of artefact
  threshold   double precision,
  meta        jsonb NOT NULL DEFAULT '{}',    -- trees, sample size, seed, scaling, windows
  trained_at  timestamptz NOT NULL DEFAULT now(),
  active      boolean NOT NULL DEFAULT true,
  PRIMARY KEY (tenant_id, name, version)
);
CREATE INDEX models_metric ON models (tenant_id, metric_id, version DESC) WHERE metric_id IS NOT NULL;

CREATE TABLE anomaly_scores (
  tenant_id    uuid NOT NULL,
  metric_id    uuid NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  score        double precision NOT NULL CHECK (score >= 0 AND score <= 1),
  anomaly      boolean NOT NULL,
  label        text NOT NULL DEFAULT 'normal'
               CHECK (label IN ('normal', 'spike', 'drop', 'drift', 'missingness', 'stuck')),
  model        text NOT NULL,                 -- "acme/meter-001/voltage@3" or "fallback"
  status       text NOT NULL DEFAULT '',      -- '' or 'warming'
  explanation  jsonb NOT NULL DEFAULT '[]',
  scored_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, metric_id, window_end, window_start)
);
-- GET /v1/anomalies: a tenant's recent anomalies, newest first.
CREATE INDEX anomaly_scores_recent ON anomaly_scores (tenant_id, window_end DESC) WHERE anomaly;

CREATE TABLE webhooks (
  tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  webhook_id   uuid NOT NULL DEFAULT gen_random_uuid(),
  name         text NOT NULL,
  url          text NOT NULL,
  secret       text NOT NULL CHECK (secret LIKE 'whsec\_%'),
  enabled      boolean NOT NULL DEFAULT true,
  timeout_ms   integer NOT NULL DEFAULT 5000 CHECK (timeout_ms > 0),
  max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, webhook_id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE alert_rules (
  tenant_id   uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  rule_id     uuid NOT NULL DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  device      text NOT NULL DEFAULT '*',      -- glob over device external_id
  metric      text NOT NULL DEFAULT '*',      -- glob over metric name
  min_score   double precision NOT NULL DEFAULT 0.5 CHECK (min_score >= 0 AND min_score <= 1),
  labels      text[] NOT NULL DEFAULT '{}',   -- empty = any label but normal
  consecutive integer NOT NULL DEFAULT 1 CHECK (consecutive > 0),
  cooldown    interval NOT NULL DEFAULT '15 minutes',
  webhook_id  uuid,
  enabled     boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rule_id),
  UNIQUE (tenant_id, name),
  FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks ON DELETE SET NULL (webhook_id)
);

-- One row per alert delivery (alert × webhook); attempts are in alert_attempts.
CREATE TABLE alert_events (
  tenant_id       uuid NOT NULL,
  alert_id        text NOT NULL,              -- stable for (rule, series, window end)
  webhook_id      uuid NOT NULL,
  rule_id         uuid,
  metric_id       uuid,
  window_end      timestamptz NOT NULL,
  score           double precision NOT NULL,
  label           text NOT NULL,
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'delivered', 'failed', 'suppressed')),
  attempts        integer NOT NULL DEFAULT 0,
  http_status     integer,
  error           text,
  payload         jsonb NOT NULL,             -- the body that is signed and sent
  next_attempt_at timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, alert_id, webhook_id)
);
-- `ep-alert retry`: failed or due deliveries.
CREATE INDEX alert_events_pending ON alert_events (tenant_id, next_attempt_at)
  WHERE status IN ('pending', 'failed');

CREATE TABLE alert_attempts (
  tenant_id    uuid NOT NULL,
  alert_id     text NOT NULL,
  webhook_id   uuid NOT NULL,
  attempt      integer NOT NULL,
  attempted_at timestamptz NOT NULL DEFAULT now(),
  http_status  integer,
  error        text,
  duration_ms  integer,
  PRIMARY KEY (tenant_id, alert_id, webhook_id, attempt),
  FOREIGN KEY (tenant_id, alert_id, webhook_id) REFERENCES alert_events ON DELETE CASCADE
);

CREATE TABLE usage_daily (
  tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  day             date NOT NULL,              -- UTC day
  points_ingested bigint NOT NULL DEFAULT 0,
  batches         bigint NOT NULL DEFAULT 0,
  windows_scored  bigint NOT NULL DEFAULT 0,
  alerts_sent     bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day)
);

-- Positions of incremental jobs (cron): where `ep-score --since-last` etc. stopped.
CREATE TABLE cursors (
  tenant_id  uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  name       text NOT NULL,                   -- the job, e.g. 'ep-score'
  scope      text NOT NULL DEFAULT '',        -- '' = whole tenant, or a series / shard
  position   timestamptz,                     -- event time processed up to (exclusive)
  position_text text,                         -- opaque position where a time is not enough
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name, scope)
);

-- Row-level security. edgepulse_app is the role tenant-scoped sessions (ep-api) use:
-- it sees only rows of the tenant in the session setting edgepulse.tenant_id; with
-- the setting unset it sees nothing. Table owners (the migrating role, used by the
-- pipeline tools) bypass RLS, as do roles with BYPASSRLS.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'edgepulse_app') THEN
    CREATE ROLE edgepulse_app NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;  -- created concurrently by a migration of another database in this cluster
END
$$;

CREATE FUNCTION edgepulse_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('edgepulse.tenant_id', true), '')::uuid $$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'api_keys', 'devices', 'metrics', 'ingest_batches',
      'datapoints', 'features', 'models', 'anomaly_scores', 'webhooks', 'alert_rules',
      'alert_events', 'alert_attempts', 'usage_daily', 'cursors']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = edgepulse_current_tenant())'
                   ' WITH CHECK (tenant_id = edgepulse_current_tenant())', t);
    IF t = 'tenants' THEN
      EXECUTE format('GRANT SELECT ON %I TO edgepulse_app', t);
    ELSE
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO edgepulse_app', t);
    END IF;
  END LOOP;
END
$$;
GRANT SELECT ON plans TO edgepulse_app;
GRANT EXECUTE ON FUNCTION edgepulse_current_tenant() TO edgepulse_app;
