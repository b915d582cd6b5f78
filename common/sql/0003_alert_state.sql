-- ep-alert's Postgres mode (`ep-alert --db`): what the rules need beyond 0001, and the
-- alert state that the --state file holds in files mode, so that it survives restarts.
-- See docs/ep-alert.md, "Postgres mode".

-- Rules: the fields of the TOML rules file that 0001 lacked.
ALTER TABLE alert_rules
  ADD COLUMN resolve        boolean NOT NULL DEFAULT false,   -- send anomaly.resolved
  ADD COLUMN severity       text NOT NULL DEFAULT 'warning'
                            CHECK (severity IN ('info', 'warning', 'critical')),
  ADD COLUMN flap_threshold integer NOT NULL DEFAULT 0 CHECK (flap_threshold >= 0),  -- 0 = off
  ADD COLUMN flap_window    interval NOT NULL DEFAULT '1 hour';

-- Webhooks: `secret` may hold two space-separated whsec_ secrets during a rotation.
-- An endpoint that answered HTTP 410 is disabled here by ep-alert until
-- `ep-alert retry --webhook NAME` re-enables it (enabled stays the operator's switch).
ALTER TABLE webhooks
  ADD COLUMN disabled_at     timestamptz,
  ADD COLUMN disabled_reason text;

-- Silences (maintenance windows): matching events are recorded as suppressed.
CREATE TABLE alert_silences (
  tenant_id  uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
  silence_id uuid NOT NULL DEFAULT gen_random_uuid(),
  name       text NOT NULL,
  rule       text NOT NULL DEFAULT '*',       -- glob over rule names
  device     text NOT NULL DEFAULT '*',
  metric     text NOT NULL DEFAULT '*',
  starts_at  timestamptz,                     -- NULL = already started
  ends_at    timestamptz NOT NULL,            -- exclusive; event time (window end)
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, silence_id),
  UNIQUE (tenant_id, name)
);

-- Per (rule, series) state: the engine's watermark, consecutive count, firing,
-- cooldown and flapping memory.
CREATE TABLE alert_state (
  tenant_id     uuid NOT NULL,
  rule_id       uuid NOT NULL,
  device        text NOT NULL,                -- device external_id
  metric        text NOT NULL,                -- metric name
  last_end      timestamptz,                  -- windows ending at or before it are replays
  consecutive   integer NOT NULL DEFAULT 0,
  firing        boolean NOT NULL DEFAULT false,
  notified      boolean NOT NULL DEFAULT false,
  last_notified timestamptz,                  -- window end of the last sent detection
  held          boolean NOT NULL DEFAULT false,
  normal_since  timestamptz,
  fires         timestamptz[] NOT NULL DEFAULT '{}',
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rule_id, device, metric),
  FOREIGN KEY (tenant_id, rule_id) REFERENCES alert_rules ON DELETE CASCADE
);

-- Deliveries: what a pending or failed row needs to be sent again after a restart or
-- by `ep-alert retry` (the exact signed body: payload jsonb does not keep the bytes).
ALTER TABLE alert_events
  ADD COLUMN type         text NOT NULL DEFAULT 'anomaly.detected',
  ADD COLUMN rule         text NOT NULL DEFAULT '',
  ADD COLUMN device       text NOT NULL DEFAULT '',
  ADD COLUMN metric       text NOT NULL DEFAULT '',
  ADD COLUMN severity     text NOT NULL DEFAULT 'warning',
  ADD COLUMN window_start timestamptz,
  ADD COLUMN body         text NOT NULL DEFAULT '',
  ADD COLUMN budget_from  timestamptz;        -- max-age counts from here (reset by `retry`)

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['alert_silences', 'alert_state']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = edgepulse_current_tenant())'
                   ' WITH CHECK (tenant_id = edgepulse_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO edgepulse_app', t);
  END LOOP;
END
$$;
