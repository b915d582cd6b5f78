-- `ep-alert --db --since-last` reads the anomaly_scores rows scored since its cursor
-- (cursors: name 'ep-alert'), in scoring order: an index on scored_at keeps that a range
-- scan instead of a scan of every score.
CREATE INDEX anomaly_scores_scored ON anomaly_scores (scored_at);
