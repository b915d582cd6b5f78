// s3rver checks the access key but not SigV4 signatures, so this test checks them: a
// loopback HTTP server (Boost.Beast) plays a minimal S3, records every request the S3
// backend sends, and recomputes each signature with the AWS SigV4 algorithm
// (docs.aws.amazon.com, "Create a signed AWS API request") as an independent oracle.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <algorithm>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "ep/archive.h"
#include "ep/crypto.h"

namespace ep {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Captured {
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase name, value
  std::string header(const std::string& name) const {
    for (auto& [n, v] : headers)
      if (n == name) return v;
    return {};
  }
};

class FakeS3 {
 public:
  FakeS3() : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeS3() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket s(io_);
    s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);  // wake accept
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Captured> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      beast::flat_buffer buf;
      for (;;) {  // keep-alive: several requests per connection
        http::request<http::string_body> req;
        http::read(sock, buf, req, ec);
        if (ec) break;
        Captured c;
        c.method = std::string(req.method_string());
        c.target = std::string(req.target());
        c.body = req.body();
        for (auto& f : req) {
          std::string n(f.name_string());
          std::transform(n.begin(), n.end(), n.begin(), [](unsigned char x) { return std::tolower(x); });
          c.headers.emplace_back(n, std::string(f.value()));
        }
        http::response<http::string_body> res;
        res.version(11);
        res.keep_alive(true);
        if (c.target.find("list-type=2") != std::string::npos) {
          res.result(http::status::ok);
          res.body() = "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
        } else if (c.method == "GET" || c.method == "HEAD") {
          res.result(http::status::not_found);
          if (c.method == "GET") res.body() = "<Error><Code>NoSuchKey</Code></Error>";
        } else {
          res.result(http::status::ok);
        }
        res.prepare_payload();
        {
          std::lock_guard<std::mutex> l(mu_);
          requests_.push_back(std::move(c));
        }
        http::write(sock, res, ec);
        if (ec) break;
      }
    }
  }
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Captured> requests_;
};

std::string field(const std::string& auth, const std::string& name) {
  size_t a = auth.find(name + "=");
  if (a == std::string::npos) return {};
  a += name.size() + 1;
  size_t b = auth.find(',', a);
  return auth.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

std::string trim(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// The AWS SigV4 signature of a captured request.
std::string expected_signature(const Captured& c, const std::string& secret, const std::string& region) {
  std::string path = c.target.substr(0, c.target.find('?'));
  std::string query = c.target.find('?') == std::string::npos ? "" : c.target.substr(c.target.find('?') + 1);
  std::vector<std::string> params;
  for (size_t s = 0; !query.empty() && s <= query.size();) {
    size_t e = query.find('&', s);
    if (e == std::string::npos) e = query.size();
    std::string p = query.substr(s, e - s);
    if (p.find('=') == std::string::npos) p += "=";
    params.push_back(p);
    s = e + 1;
  }
  std::sort(params.begin(), params.end());
  std::string canonical_query;
  for (auto& p : params) canonical_query += (canonical_query.empty() ? "" : "&") + p;
  std::string auth = c.header("authorization");
  std::string signed_headers = field(auth, "SignedHeaders");
  std::string canonical_headers;
  for (size_t s = 0; s <= signed_headers.size();) {
    size_t e = signed_headers.find(';', s);
    if (e == std::string::npos) e = signed_headers.size();
    std::string h = signed_headers.substr(s, e - s);
    canonical_headers += h + ":" + trim(c.header(h)) + "\n";
    s = e + 1;
  }
  std::string canonical = c.method + "\n" + path + "\n" + canonical_query + "\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + c.header("x-amz-content-sha256");
  std::string amz_date = c.header("x-amz-date");
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + region + "/s3/aws4_request";
  std::string to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + crypto::sha256_hex(canonical);
  auto d2s = [](const crypto::Digest& d) { return std::string(reinterpret_cast<const char*>(d.data()), d.size()); };
  std::string k = d2s(crypto::hmac_sha256("AWS4" + secret, date));
  k = d2s(crypto::hmac_sha256(k, region));
  k = d2s(crypto::hmac_sha256(k, "s3"));
  k = d2s(crypto::hmac_sha256(k, "aws4_request"));
  return crypto::hex(crypto::hmac_sha256(k, to_sign));
}

TEST(S3SigV4, EveryRequestCarriesAValidSignature) {
  FakeS3 server;
  ArchiveOptions o;
  o.s3_endpoint = server.endpoint();
  o.s3_region = "eu-central-1";
  o.access_key = "AKIDEXAMPLE";
  o.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  auto a = Archive::open("s3://bucket/pre fix", o);
  ASSERT_TRUE(a) << a.status().message();
  std::string body = "{\"kind\":\"batch\",\"raw\":\"x\"}";
  auto u = (*a)->put({"acme:eu", "0190a000-0000-7000-8000-000000000001", 0, body});
  ASSERT_TRUE(u) << u.status().message();
  ArchiveFilter f;
  f.tenant = "acme:eu";
  f.from = 0;
  ASSERT_TRUE((*a)->list(f, [](const ArchiveObject&) { return true; }));

  auto reqs = server.requests();
  ASSERT_GE(reqs.size(), 5u);  // GET FORMAT, PUT FORMAT, HEAD, PUT, list
  bool saw_put = false, saw_list = false;
  for (const auto& c : reqs) {
    SCOPED_TRACE(c.method + " " + c.target);
    std::string auth = c.header("authorization");
    ASSERT_TRUE(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")) << auth;
    EXPECT_NE(auth.find("/eu-central-1/s3/aws4_request"), std::string::npos) << auth;
    std::string sh = field(auth, "SignedHeaders");
    for (const char* h : {"host", "x-amz-content-sha256", "x-amz-date"})
      EXPECT_NE((";" + sh + ";").find(std::string(";") + h + ";"), std::string::npos) << sh;
    EXPECT_EQ(c.header("x-amz-content-sha256"), crypto::sha256_hex(c.body)) << "payload hash";
    EXPECT_EQ(field(auth, "Signature"), expected_signature(c, o.secret_key, o.s3_region));
    if (c.method == "PUT" && c.body == body + "\n") {
      saw_put = true;
      EXPECT_EQ(c.header("if-none-match"), "*");
      EXPECT_NE((";" + sh + ";").find(";if-none-match;"), std::string::npos) << "conditional header is signed";
      EXPECT_EQ(c.target, "/bucket/pre%20fix/acme%3Aeu/1970/01/01/0190a000-0000-7000-8000-000000000001.json");
    }
    if (c.target.find("list-type=2") != std::string::npos) {
      saw_list = true;
      EXPECT_EQ(c.target, "/bucket/?list-type=2&prefix=pre%20fix%2Facme%3Aeu%2F&start-after=pre%20fix%2Facme%3Aeu%2F1970%2F01%2F01");
    }
  }
  EXPECT_TRUE(saw_put);
  EXPECT_TRUE(saw_list);
}

}  // namespace
}  // namespace ep
