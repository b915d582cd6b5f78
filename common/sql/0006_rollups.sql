-- Per-series aggregates at 1 minute, 1 hour and 1 UTC day (docs/schema.md, "Rollups"),
-- maintained by ep-load in the transaction that inserts the points, counting exactly the
-- points that transaction inserted; `ep-admin rollup rebuild` recomputes them from
-- datapoints. One table per resolution, all alike; bucket is the UTC start of the
-- minute, hour or day.
--
-- sum and sumsq are exact: each value counts as the shortest decimal that reads back as
-- the same double (value::text::numeric with extra_float_digits > 0, what the JSON
-- carried), so the order in which points arrive never changes a bit of them.

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['rollups_1m', 'rollups_1h', 'rollups_1d']
  LOOP
    EXECUTE format($f$
      CREATE TABLE %I (
        tenant_id   uuid NOT NULL,
        metric_id   uuid NOT NULL,
        bucket      timestamptz NOT NULL,
        n           bigint NOT NULL CHECK (n > 0),
        min         double precision NOT NULL,
        max         double precision NOT NULL,
        sum         numeric NOT NULL,
        sumsq       numeric NOT NULL,
        first_ts    timestamptz NOT NULL,
        first_value double precision NOT NULL,
        last_ts     timestamptz NOT NULL,
        last_value  double precision NOT NULL,
        PRIMARY KEY (tenant_id, metric_id, bucket)
      ) WITH (fillfactor = 70)$f$, t);
    -- A tenant's buckets over time (all series of a tenant since T; retention).
    EXECUTE format('CREATE INDEX %I ON %I (tenant_id, bucket)', t || '_bucket', t);
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = edgepulse_current_tenant())'
                   ' WITH CHECK (tenant_id = edgepulse_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO edgepulse_app', t);
  END LOOP;
END
$$;

-- Retention per resolution; raw points keep retention_days.
ALTER TABLE plans
  ADD COLUMN retention_1m_days integer NOT NULL DEFAULT 90   CHECK (retention_1m_days > 0),
  ADD COLUMN retention_1h_days integer NOT NULL DEFAULT 730  CHECK (retention_1h_days > 0),
  ADD COLUMN retention_1d_days integer NOT NULL DEFAULT 1825 CHECK (retention_1d_days > 0);
