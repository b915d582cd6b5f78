-- `ep-load --follow` reads the archive's segment log (format 2) itself and commits how
-- far it got IN THE SAME TRANSACTION as the rows it loads (like a Kafka consumer's
-- offset). One row per consumer and segment; a segment keeps its stem when its active
-- file (.wal) is sealed into a .seg, and the position counts good records from the
-- start of the segment, which sealing preserves (docs/ep-load.md, "Following the archive").
CREATE TABLE archive_cursors (
  consumer    text NOT NULL,            -- --consumer NAME
  tenant      text NOT NULL,            -- the tenant directory of the segment
  day         date NOT NULL,            -- its UTC day directory
  segment     text NOT NULL,            -- stem: seg-<created ns>-<tag>
  records     bigint NOT NULL,          -- good records consumed from the start of the segment
  byte_offset bigint NOT NULL DEFAULT 0, -- active segment: end of the last consumed record (0 = not known)
  last_crc    bigint NOT NULL DEFAULT 0, -- crc32 of the last consumed record (checked on resume)
  last_size   integer NOT NULL DEFAULT 0, -- its stored size, framing included
  done        boolean NOT NULL DEFAULT false, -- sealed and read to the end: never read again
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, tenant, day, segment)
);

-- One row per consumer: where it follows from and how far behind the head of the log it
-- is, written with every commit and at least every few seconds while it runs
-- (`ep-admin check` reports it and warns about a consumer that stopped advancing).
CREATE TABLE archive_consumers (
  consumer     text PRIMARY KEY,
  archive      text NOT NULL,                    -- the archive URI it follows
  tenant       text NOT NULL DEFAULT '',         -- --tenant filter ('' = every tenant)
  lag_batches  bigint NOT NULL DEFAULT 0,        -- good records in the log not yet consumed
  lag_seconds  double precision NOT NULL DEFAULT 0, -- age of the oldest of them (0 when none)
  head_batches bigint NOT NULL DEFAULT 0,        -- good records in the log it has seen
  loaded_batches bigint NOT NULL DEFAULT 0,      -- batches it loaded since it started
  advanced_at  timestamptz,                      -- last commit that moved a cursor
  reported_at  timestamptz NOT NULL DEFAULT now() -- last report (heartbeat)
);
