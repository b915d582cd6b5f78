// Deliverer against a real receiver on 127.0.0.1: classification of outcomes, backoff
// bounds, Retry-After, timeouts and cut connections. Short schedules, no sleeps: the
// loop waits on the sockets and the next due retry.
#include "deliverer.h"

#include <gtest/gtest.h>

#include "engine.h"
#include "fixtures.h"
#include "test_receiver.h"
#include "webhook.h"

using namespace ep;
using namespace ep::alert;
using namespace ep::alert::testing;

namespace {

struct Report {
  Outcome outcome;
  int attempts;
  int http_status;
  std::string error;
  TimeNs delay;  // next_attempt - now when retrying
  bool sent;
  std::string tenant;
};

class DelivererTest : public ::testing::Test {
 protected:
  void SetUp() override { policy_ = RetryPolicy{5, 20 * kNsPerMs, 80 * kNsPerMs, 60 * kNsPerSec}; }

  static HttpClientOptions client(TimeNs connect_timeout, TimeNs total_timeout, size_t max_in_flight) {
    HttpClientOptions o;
    o.connect_timeout = connect_timeout;
    o.total_timeout = total_timeout;
    o.max_in_flight = max_in_flight;
    o.user_agent = "t";
    return o;
  }

  // `extra`: more rules-file text (another webhook); `share`: per-tenant shares.
  void make(const std::string& url, HttpClientOptions http = {}, const std::string& extra = "",
            TenantShare share = {}) {
    auto r = parse_rules("[[webhooks]]\nname = \"ops\"\nurl = \"" + url + "\"\nsecret = \"" +
                             kSecret + "\"\n[[rules]]\nname = \"r\"\nwebhooks = \"ops\"\n" +
                             extra,
                         "rules.toml");
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    rules_ = std::move(r).value();
    if (http.total_timeout == 15 * kNsPerSec) http.total_timeout = 2 * kNsPerSec;
    http.egress.allow(*egress::parse_cidr("127.0.0.0/8"));  // the receivers are on loopback
    http_ = std::make_unique<HttpClient>(http);
    deliverer_ = std::make_unique<Deliverer>(rules_, state_, *http_, policy_, clock_,
                                             [this](const AttemptReport& a) {
                                               reports_.push_back({a.outcome, a.delivery->attempts,
                                                                   a.delivery->http_status,
                                                                   a.delivery->error,
                                                                   a.delivery->next_attempt - clock_.now(),
                                                                   a.sent, a.delivery->tenant});
                                             },
                                             share);
  }

  Delivery delivery(int window, const std::string& device = "meter-001") {
    Delivery d;
    d.alert_id = make_alert_id("r", "acme", device, "voltage", window_end(window));
    d.webhook = "ops";
    d.type = "anomaly.detected";
    d.rule = "r";
    d.tenant = "acme";
    d.device = device;
    d.metric = "voltage";
    d.end = window_end(window);
    d.body = "{\"window\":" + std::to_string(window) + "}";
    d.created = d.next_attempt = clock_.now();
    return d;
  }

  // Drives the deliverer until everything settled (bounded by a generous deadline).
  void drain() {
    TimeNs deadline = monotonic_ns() + 30 * kNsPerSec;
    while (deliverer_->unsettled() > 0 && monotonic_ns() < deadline)
      ASSERT_TRUE(deliverer_->pump(100 * kNsPerMs).is_ok());
    ASSERT_EQ(deliverer_->unsettled(), 0u) << "deliveries did not settle";
  }

  RetryPolicy policy_;
  const Clock& clock_ = SystemClock::instance();
  RuleSet rules_;
  State state_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<Deliverer> deliverer_;
  std::vector<Report> reports_;
  TestReceiver receiver_;
};

}  // namespace

TEST(Backoff, CapDoublesUpToTheMaximum) {
  RetryPolicy p{8, kNsPerSec, 10 * kNsPerSec, 0};
  EXPECT_EQ(backoff_cap(p, 1), kNsPerSec);
  EXPECT_EQ(backoff_cap(p, 2), 2 * kNsPerSec);
  EXPECT_EQ(backoff_cap(p, 4), 8 * kNsPerSec);
  EXPECT_EQ(backoff_cap(p, 5), 10 * kNsPerSec);
  EXPECT_EQ(backoff_cap(p, 60), 10 * kNsPerSec);
}

TEST_F(DelivererTest, BackoffScheduleAndJitterStayWithinBoundsThenFails) {
  receiver_.script({}, Action::reply(500));
  make(receiver_.url());
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  drain();
  ASSERT_EQ(reports_.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(reports_[i].outcome, Outcome::kRetrying);
    EXPECT_EQ(reports_[i].attempts, i + 1);
    EXPECT_GE(reports_[i].delay, -kNsPerMs);  // at most clock granularity in the past
    EXPECT_LE(reports_[i].delay, backoff_cap(policy_, i + 1)) << "attempt " << i + 1;
  }
  EXPECT_EQ(reports_[4].outcome, Outcome::kFailed);
  EXPECT_EQ(reports_[4].error, "gave up after 5 attempts: HTTP 500: scripted failure ");
  EXPECT_EQ(receiver_.count(), 5u);
  // Every attempt carries the same id and a fresh, valid signature.
  for (const auto& r : receiver_.received()) {
    EXPECT_EQ(r.header("webhook-id"), delivery(0).alert_id);
    ReceivedWebhook w{r.header("webhook-id"), r.header("webhook-timestamp"),
                      r.header("webhook-signature"), true, true, true, r.body};
    EXPECT_TRUE(verify(w, rules_.webhooks[0].keys, clock_.now(), 300 * kNsPerSec).valid);
  }
  ASSERT_EQ(state_.deliveries.size(), 1u);
  EXPECT_TRUE(state_.deliveries.begin()->second.failed);  // dead letter, kept for `retry`
}

TEST_F(DelivererTest, JitterSpreadsRetriesOverTheWholeInterval) {
  // 30 deliveries fail once and then succeed: 30 delays drawn from [0, 80ms].
  policy_.backoff_base = 80 * kNsPerMs;
  std::vector<Action> first_fail(30, Action::reply(503));
  receiver_.script(first_fail, Action::reply(200));
  make(receiver_.url(), client(5 * kNsPerSec, 2 * kNsPerSec, 64));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(deliverer_->add(delivery(0, "m" + std::to_string(i))));
  drain();
  TimeNs lo = INT64_MAX, hi = INT64_MIN;
  int delivered = 0;
  for (const auto& r : reports_) {
    if (r.outcome == Outcome::kDelivered) ++delivered;
    if (r.outcome != Outcome::kRetrying) continue;
    EXPECT_LE(r.delay, 80 * kNsPerMs);
    lo = std::min(lo, r.delay);
    hi = std::max(hi, r.delay);
  }
  EXPECT_EQ(delivered, 30);
  // Uniform on [0, 80ms]: 30 draws all inside a 20ms band has probability < 1e-17.
  EXPECT_GT(hi - lo, 20 * kNsPerMs);
  EXPECT_TRUE(state_.deliveries.empty());
}

TEST_F(DelivererTest, RetryAfterIsHonoured) {
  receiver_.script({Action::retry_after(429, "1")}, Action::reply(200));
  make(receiver_.url());
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  drain();
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_EQ(reports_[0].outcome, Outcome::kRetrying);
  EXPECT_EQ(reports_[0].http_status, 429);
  EXPECT_GT(reports_[0].delay, 990 * kNsPerMs);  // 1 s, not the 20 ms backoff
  EXPECT_EQ(reports_[1].outcome, Outcome::kDelivered);
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_GE(got[1].at - got[0].at, std::chrono::milliseconds(990));
}

TEST_F(DelivererTest, TimeoutAndCutConnectionAreRetried) {
  receiver_.script({Action::hang_up(), Action::cut()}, Action::reply(204));
  make(receiver_.url(), client(kNsPerSec, 300 * kNsPerMs, 4));
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  drain();
  ASSERT_EQ(reports_.size(), 3u);
  EXPECT_EQ(reports_[0].outcome, Outcome::kRetrying);
  EXPECT_EQ(reports_[0].error.rfind("timeout: ", 0), 0u) << reports_[0].error;
  EXPECT_EQ(reports_[1].outcome, Outcome::kRetrying);
  EXPECT_EQ(reports_[1].error.rfind("connection: ", 0), 0u) << reports_[1].error;
  EXPECT_EQ(reports_[2].outcome, Outcome::kDelivered);
  EXPECT_EQ(reports_[2].attempts, 3);
  EXPECT_EQ(reports_[2].http_status, 204);
}

TEST_F(DelivererTest, ConnectionRefusedIsRetriedThenFails) {
  TestReceiver closed;
  std::string url = closed.url();
  closed.stop();  // nothing listens on that port any more
  policy_.max_attempts = 2;
  make(url);
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  drain();
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_EQ(reports_[0].outcome, Outcome::kRetrying);
  EXPECT_EQ(reports_[1].outcome, Outcome::kFailed);
  EXPECT_EQ(reports_[1].error.rfind("gave up after 2 attempts: connection: ", 0), 0u)
      << reports_[1].error;
}

TEST_F(DelivererTest, GoneDisablesTheEndpointAndBadRequestIsPermanent) {
  receiver_.script({Action::reply(400), Action::reply(410)}, Action::reply(200));
  make(receiver_.url(), client(kNsPerSec, 2 * kNsPerSec, 1));
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  ASSERT_TRUE(deliverer_->add(delivery(1)));
  ASSERT_TRUE(deliverer_->add(delivery(2)));
  drain();
  ASSERT_EQ(reports_.size(), 3u);
  EXPECT_EQ(reports_[0].outcome, Outcome::kFailed);
  EXPECT_EQ(reports_[0].error, "permanent: HTTP 400: scripted failure ");
  EXPECT_EQ(reports_[1].outcome, Outcome::kDisabled);
  EXPECT_TRUE(reports_[1].sent);
  EXPECT_EQ(reports_[2].outcome, Outcome::kDisabled);
  EXPECT_FALSE(reports_[2].sent);  // not sent: the endpoint is disabled
  EXPECT_EQ(receiver_.count(), 2u);
  EXPECT_EQ(state_.disabled.count("ops"), 1u);
  // `retry` without naming the endpoint leaves it disabled; naming it re-enables it.
  size_t skipped = 0;
  EXPECT_EQ(deliverer_->requeue_failed(INT64_MIN, "", "", &skipped), 0u);
  EXPECT_EQ(skipped, 3u);
  EXPECT_EQ(deliverer_->requeue_failed(INT64_MIN, "", "ops"), 3u);
  drain();
  EXPECT_EQ(receiver_.count(), 5u);
  EXPECT_TRUE(state_.deliveries.empty());
  EXPECT_TRUE(state_.disabled.empty());
}

TEST_F(DelivererTest, SameDeliveryIsQueuedOnce) {
  make(receiver_.url());
  EXPECT_TRUE(deliverer_->add(delivery(0)));
  EXPECT_FALSE(deliverer_->add(delivery(0)));
  drain();
  EXPECT_EQ(receiver_.count(), 1u);
}

TEST_F(DelivererTest, MaxAgeEndsRetries) {
  policy_.max_age = 10 * kNsPerMs;  // a Retry-After of 1 s is past it
  receiver_.script({Action::retry_after(503, "1")}, Action::reply(200));
  make(receiver_.url());
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  drain();
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_EQ(reports_[0].outcome, Outcome::kFailed);
  EXPECT_EQ(reports_[0].error.rfind("gave up: next attempt in 1s would pass the max age of 10ms", 0), 0u)
      << reports_[0].error;
}

TEST_F(DelivererTest, EventsOfOneSeriesAreDeliveredInWindowOrder) {
  // The detection fails twice; its resolve (a later window) must not overtake it.
  receiver_.script({Action::reply(500), Action::reply(500)}, Action::reply(200));
  make(receiver_.url(), client(kNsPerSec, 2 * kNsPerSec, 8));
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  ASSERT_TRUE(deliverer_->add(delivery(1)));
  drain();
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].header("webhook-id"), delivery(0).alert_id) << i;
  EXPECT_EQ(got[3].header("webhook-id"), delivery(1).alert_id);
  EXPECT_EQ(got[2].answered, 200);
}

// Tenant globex's endpoint accepts and never answers; its three deliveries come first.
// acme's goes out at once anyway: globex has one connection of two (its share) and
// 300 ms of in-flight time, after which its deliveries wait for the next run.
TEST_F(DelivererTest, DeadEndpointHoldsOnlyItsTenantsShareOfConnectionsAndTime) {
  TestReceiver dead;
  dead.script({}, Action::hang_up());
  make(receiver_.url(), client(kNsPerSec, 20 * kNsPerSec, 2),
       "[[webhooks]]\nname = \"dead\"\nurl = \"" + dead.url() + "\"\nsecret = \"" + kSecret +
           "\"\n",
       TenantShare{1, 300 * kNsPerMs, 600 * kNsPerSec, 20 * kNsPerSec});
  for (int i = 0; i < 3; ++i) {
    Delivery d = delivery(0, "meter-00" + std::to_string(i));
    d.tenant = "globex";
    d.webhook = "dead";
    ASSERT_TRUE(deliverer_->add(d));
  }
  ASSERT_TRUE(deliverer_->add(delivery(0)));
  TimeNs deadline = monotonic_ns() + 30 * kNsPerSec;
  while (deliverer_->workable() > 0 && monotonic_ns() < deadline)
    ASSERT_TRUE(deliverer_->pump(100 * kNsPerMs).is_ok());
  ASSERT_EQ(deliverer_->workable(), 0u);
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_EQ(reports_[0].tenant, "acme");  // before globex's attempt ended
  EXPECT_EQ(reports_[0].outcome, Outcome::kDelivered);
  EXPECT_EQ(reports_[1].tenant, "globex");
  EXPECT_EQ(reports_[1].outcome, Outcome::kRetrying);
  EXPECT_EQ(reports_[1].error.rfind("cut at the tenant's time budget (--tenant-budget 300ms", 0), 0u)
      << reports_[1].error;
  EXPECT_EQ(dead.count(), 1u);  // one connection, then the budget was spent
  EXPECT_EQ(receiver_.count(), 1u);
  EXPECT_EQ(deliverer_->unsettled(), 3u);  // pending, not lost
  auto spent = deliverer_->spent_tenants();
  ASSERT_EQ(spent.size(), 1u);
  EXPECT_EQ(spent[0].tenant, "globex");
  EXPECT_EQ(spent[0].left, 3u);
  dead.stop();
}
