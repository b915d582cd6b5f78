#include "http_client.h"

#include <curl/curl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>

namespace ep::alert {

namespace {
constexpr size_t kBodyPrefixBytes = 512;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
}  // namespace

std::optional<TimeNs> parse_retry_after(std::string_view value, TimeNs now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  std::int64_t secs = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  // A delay beyond kMaxDuration (or a date beyond 2262) waits kMaxDuration: the
  // deliverer then gives up on max age instead of overflowing now + delay.
  if (ec == std::errc() && p == value.data() + value.size())
    return secs < 0 ? std::nullopt
                    : std::optional<TimeNs>(std::min(secs, kMaxDuration / kNsPerSec) * kNsPerSec);
  std::string date(value);
  time_t t = curl_getdate(date.c_str(), nullptr);
  if (t < 0) return std::nullopt;
  auto at = seconds_to_ns(t);
  if (!at || *at - now > kMaxDuration) return kMaxDuration;
  return std::max<TimeNs>(0, *at - now);
}

struct HttpClient::Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest req;
  HttpResult res;
  TimeNs started = 0;
  char errbuf[CURL_ERROR_SIZE] = {0};
  const egress::Policy* egress = nullptr;
  std::string denied;     // the first address the policy refused, explained
  int opened = 0;         // sockets opened to allowed addresses

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }

  static size_t on_body(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t len = size * n;
    size_t room = kBodyPrefixBytes - std::min(kBodyPrefixBytes, t->res.body_prefix.size());
    t->res.body_prefix.append(data, std::min(room, len));
    return len;
  }
  static size_t on_header(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    std::string_view line(data, size * n);
    constexpr std::string_view kName = "retry-after:";
    if (line.size() > kName.size()) {
      bool match = true;
      for (size_t i = 0; i < kName.size() && match; ++i)
        match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
      if (match) t->res.retry_after = parse_retry_after(line.substr(kName.size()), now_ns());
    }
    return size * n;
  }
  // Every connection curl makes goes through here, with the address it is about to
  // connect to: the one place the egress policy is enforced.
  static curl_socket_t on_open_socket(void* self, curlsocktype, curl_sockaddr* a) {
    auto* t = static_cast<Transfer*>(self);
    auto addr = egress::from_sockaddr(&a->addr, a->addrlen);
    if (!addr) {
      if (t->denied.empty())
        t->denied = "webhook URL resolves to an address of family " + std::to_string(a->family) +
                    ", which the egress policy denies";
      return CURL_SOCKET_BAD;
    }
    egress::Verdict v = t->egress->check(*addr);
    if (!v.allowed) {
      if (t->denied.empty())
        t->denied = "webhook URL resolves to " + v.describe() +
                    ", which the egress policy denies (an operator allows it with --allow-egress)";
      return CURL_SOCKET_BAD;
    }
    ++t->opened;
    return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  }
};

Status check_resolve(std::string_view entry) {
  auto bad = [&](const std::string& why) {
    return Status::usage("--resolve " + std::string(entry) + ": " + why);
  };
  auto c1 = entry.find(':');
  auto c2 = c1 == std::string_view::npos ? c1 : entry.find(':', c1 + 1);
  if (c1 == 0 || c2 == std::string_view::npos) return bad("expected HOST:PORT:ADDR");
  std::string_view port = entry.substr(c1 + 1, c2 - c1 - 1);
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535)
    return bad("port must be 1-65535");
  std::string_view addrs = entry.substr(c2 + 1);
  while (true) {
    auto comma = addrs.find(',');
    std::string_view a = addrs.substr(0, comma);
    if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
    if (!egress::parse_address(a)) return bad(std::string(a) + ": not an IPv4 or [IPv6] address");
    if (comma == std::string_view::npos) break;
    addrs.remove_prefix(comma + 1);
  }
  return Status::ok();
}

HttpClient::HttpClient(HttpClientOptions opts) : opts_(std::move(opts)) {
  global_init();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(opts_.max_in_flight));
  curl_slist* list = nullptr;
  for (const auto& r : opts_.resolve) list = curl_slist_append(list, r.c_str());
  resolve_ = list;
}

HttpClient::~HttpClient() {
  for (auto& t : transfers_) curl_multi_remove_handle(multi_, t->easy);
  transfers_.clear();
  curl_multi_cleanup(multi_);
  curl_slist_free_all(static_cast<curl_slist*>(resolve_));
}

size_t HttpClient::in_flight() const { return transfers_.size(); }

Status HttpClient::submit(HttpRequest req) {
  auto t = std::make_unique<Transfer>();
  t->easy = curl_easy_init();
  if (!t->easy) return Status::software("curl_easy_init failed");
  t->req = std::move(req);
  t->res.tag = t->req.tag;
  for (const auto& h : t->req.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
  t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, t->req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is a permanent failure
  curl_easy_setopt(e, CURLOPT_PROXY, "");            // no proxy from the environment
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Transfer::on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t.get());
  t->egress = &opts_.egress;
  if (resolve_) curl_easy_setopt(e, CURLOPT_RESOLVE, static_cast<curl_slist*>(resolve_));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->req.body.size()));
  curl_easy_setopt(e, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout / kNsPerMs));
  TimeNs timeout = t->req.timeout > 0 ? t->req.timeout : opts_.total_timeout;
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout / kNsPerMs));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts_.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opts_.ca_bundle.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  t->started = monotonic_ns();
  CURLMcode mc = curl_multi_add_handle(multi_, e);
  if (mc != CURLM_OK) return Status::software(std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
  transfers_.push_back(std::move(t));
  return Status::ok();
}

void HttpClient::collect(std::vector<HttpResult>& done) {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    CURLcode rc = m->data.result;
    t->res.duration = monotonic_ns() - t->started;
    if (rc == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
      t->res.status = static_cast<int>(code);
    } else {
      t->res.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
      t->res.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
      if (!t->denied.empty() && t->opened == 0) {
        t->res.egress_denied = true;
        t->res.error = t->denied;
      } else if (!t->denied.empty()) {
        t->res.error += "; another address: " + t->denied;
      }
      t->res.retry_after.reset();
    }
    curl_multi_remove_handle(multi_, t->easy);
    done.push_back(std::move(t->res));
    auto it = std::find_if(transfers_.begin(), transfers_.end(),
                           [&](const auto& p) { return p.get() == t; });
    transfers_.erase(it);
  }
}

namespace {
// Readable, at end of file, or in error: a read(2) will not block.
bool fd_ready(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
}
}  // namespace

Status HttpClient::poll(TimeNs max_wait, std::vector<HttpResult>& done, int extra_fd,
                        bool* extra_ready) {
  if (extra_ready) *extra_ready = false;
  int running = 0;
  CURLMcode mc = curl_multi_perform(multi_, &running);
  if (mc != CURLM_OK) return Status::software(std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
  collect(done);
  if (extra_fd >= 0 && fd_ready(extra_fd)) {
    if (extra_ready) *extra_ready = true;
    return Status::ok();
  }
  if (max_wait <= 0 || !done.empty()) return Status::ok();
  curl_waitfd wfd{extra_fd, CURL_WAIT_POLLIN, 0};
  int n = 0;
  int ms = static_cast<int>(std::min<TimeNs>(max_wait / kNsPerMs + (max_wait % kNsPerMs ? 1 : 0),
                                             60'000));
  mc = curl_multi_poll(multi_, extra_fd >= 0 ? &wfd : nullptr, extra_fd >= 0 ? 1 : 0, ms, &n);
  if (mc != CURLM_OK) return Status::software(std::string("curl_multi_poll: ") + curl_multi_strerror(mc));
  if (extra_fd >= 0 && extra_ready) *extra_ready = fd_ready(extra_fd);
  mc = curl_multi_perform(multi_, &running);
  if (mc != CURLM_OK) return Status::software(std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
  collect(done);
  return Status::ok();
}

}  // namespace ep::alert
