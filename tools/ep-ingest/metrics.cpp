#include "metrics.h"

#include <cstdio>

namespace ep::ingest {

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::kInvalidJson: return "invalid_json";
    case Reason::kInvalidPayload: return "invalid_payload";
    case Reason::kTooLarge: return "payload_too_large";
    case Reason::kUnauthorized: return "unauthorized";
    case Reason::kForbidden: return "forbidden";
    case Reason::kUnsupportedMediaType: return "unsupported_media_type";
    case Reason::kQuota: return "quota_exceeded";
    case Reason::kIdempotencyConflict: return "idempotency_conflict";
    case Reason::kArchive: return "archive_error";
    case Reason::kUnsupportedEncoding: return "unsupported_encoding";
    case Reason::kCount: break;
  }
  return "other";
}

void Histogram::observe(TimeNs d) {
  double s = static_cast<double>(d) / kNsPerSec;
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  buckets_[i]++;
  count_++;
  sum_ns_ += d;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  std::string n(name);
  out += "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " histogram\n";
  std::uint64_t cum = 0;
  char buf[64];
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cum += buckets_[i];
    std::snprintf(buf, sizeof buf, "%g", kBounds[i]);
    out += n + "_bucket{le=\"" + buf + "\"} " + std::to_string(cum) + "\n";
  }
  cum += buckets_[kBounds.size()];
  out += n + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(sum_ns_.load()) / kNsPerSec);
  out += n + "_sum " + buf + "\n";
  out += n + "_count " + std::to_string(count_.load()) + "\n";
}

namespace {
void gauge(std::string& out, const char* name, const char* help, const std::string& v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + v + "\n";
}
void counter(std::string& out, const char* name, const char* help, std::uint64_t v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(v) + "\n";
}
}  // namespace

// The s3:// format 2 spool and its uploads.
void render_uploads(std::string& out, const ArchiveStats& a, TimeNs now) {
  char lag[32];
  double secs = a.oldest_pending && now > a.oldest_pending ? static_cast<double>(now - a.oldest_pending) / kNsPerSec : 0;
  std::snprintf(lag, sizeof lag, "%.3f", secs);
  gauge(out, "ep_ingest_archive_upload_lag_seconds",
        "How long the oldest sealed segment not yet uploaded has waited (0: none waiting).", lag);
  gauge(out, "ep_ingest_archive_upload_pending_segments", "Sealed segments in the spool waiting for upload.",
        std::to_string(a.pending_segments));
  gauge(out, "ep_ingest_archive_upload_pending_bytes", "Bytes of sealed segments waiting for upload.",
        std::to_string(a.pending_bytes));
  gauge(out, "ep_ingest_archive_spool_active_bytes", "Bytes in active (not yet sealed) segments of the spool.",
        std::to_string(a.active_bytes));
  gauge(out, "ep_ingest_archive_spool_budget_bytes", "--archive-spool-budget.", std::to_string(a.spool_budget));
  counter(out, "ep_ingest_archive_uploaded_segments_total", "Segments uploaded and confirmed by the store.",
          a.uploaded_segments);
  counter(out, "ep_ingest_archive_uploaded_bytes_total", "Bytes of segments uploaded and confirmed.",
          a.uploaded_bytes);
  counter(out, "ep_ingest_archive_upload_failures_total", "Failed segment uploads (retried with backoff).",
          a.upload_failures);
}

void Metrics::request(unsigned status, TimeNs duration) {
  if (status < by_status_.size()) by_status_[status]++;
  latency_.observe(duration);
}

std::string Metrics::render(const http::ServerStats& server, const ArchiveStats* archive, TimeNs now) const {
  std::string out;
  out.reserve(4096);
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
  };
  out += "# HELP ep_ingest_requests_total HTTP requests answered, by status code.\n"
         "# TYPE ep_ingest_requests_total counter\n";
  for (size_t s = 0; s < by_status_.size(); ++s) {
    if (auto v = by_status_[s].load())
      out += "ep_ingest_requests_total{code=\"" + std::to_string(s) + "\"} " + std::to_string(v) + "\n";
  }
  counter("ep_ingest_batches_accepted_total", "Batches acknowledged with 202.", batches_);
  counter("ep_ingest_points_accepted_total", "Points in acknowledged batches.", points_);
  counter("ep_ingest_idempotent_replays_total",
          "Requests answered from the Idempotency-Key cache (nothing emitted).", replays_);
  out += "# HELP ep_ingest_rejects_total Rejected requests, by reason.\n"
         "# TYPE ep_ingest_rejects_total counter\n";
  for (size_t r = 0; r < rejects_.size(); ++r) {
    out += std::string("ep_ingest_rejects_total{reason=\"") + reason_name(static_cast<Reason>(r)) +
           "\"} " + std::to_string(rejects_[r].load()) + "\n";
  }
  latency_.render(out, "ep_ingest_request_duration_seconds",
                  "Time from the end of the request header to the response written.");
  if (archive) {
    commit_latency_.render(out, "ep_ingest_archive_commit_duration_seconds",
                           "Duration of one group commit to the archive (write, fsync, rename).");
    counter("ep_ingest_archive_commits_total", "Group commits to the archive.", commits_);
    counter("ep_ingest_archive_committed_batches_total", "Batches written by group commits.",
            committed_batches_);
  }
  if (archive && archive->uploads) render_uploads(out, *archive, now);
  http::render_metrics(server, "ep_ingest", out);
  return out;
}

}  // namespace ep::ingest
