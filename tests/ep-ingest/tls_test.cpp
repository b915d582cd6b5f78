// ep-ingest over HTTPS (--tls-cert/--tls-key) with the real curl and openssl binaries and
// a certificate made at test time: served, TLS 1.1 refused, plain HTTP on the TLS port
// refused, SIGHUP serves a new certificate and a bad one keeps the old.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>

#include "harness.h"
#include "tls_tools.h"

namespace ep::ingest::test {
namespace {

class Tls : public KeyedTest {
 protected:
  void SetUp() override {
    KeyedTest::SetUp();
    cert_ = eptest::make_cert(dir_, "server");
  }
  std::unique_ptr<Server> start() {
    return std::make_unique<Server>(
        dir_, std::vector<std::string>{"--keys", keys_path_, "--tls-cert", cert_.cert, "--tls-key", cert_.key});
  }
  eptest::CertFiles cert_;
};

TEST_F(Tls, CurlIsServedOverHttpsAndTls11IsRefused) {
  auto s = start();
  EXPECT_NE(s->process().err().find("listening on https://127.0.0.1:"), std::string::npos) << s->process().err();
  auto h = eptest::curl_https(s->port(), "/v1/health", cert_.cert);
  EXPECT_EQ(h.code, 0) << h.out;
  EXPECT_EQ(h.out, "{\"status\":\"ok\"}\n200");
  std::string body = payload("meter-1", 2);
  std::string body_file = dir_ + "/body.json";
  write_text(body_file, body);
  auto post = eptest::curl_https(s->port(), "/v1/ingest", cert_.cert,
                                 "--tlsv1.2 --tls-max 1.2 -H 'Content-Type: application/json' -H 'X-API-Key: " +
                                     key_.key + "' --data-binary @" + body_file);
  EXPECT_EQ(post.code, 0) << post.out;
  EXPECT_NE(post.out.find("\n202"), std::string::npos) << post.out;

  // The server, not the client, turns TLS 1.1 down: the client offers it and gets the
  // server's "protocol version" alert.
  auto old = eptest::tls11_attempt(s->port());
  EXPECT_NE(old.code, 0) << old.out;
  EXPECT_NE(old.out.find("alert protocol version"), std::string::npos) << old.out;
  // Plain HTTP on the TLS port gets no HTTP answer.
  auto plain = eptest::shell("curl -sS --max-time 20 -w '%{http_code}' http://127.0.0.1:" +
                             std::to_string(s->port()) + "/v1/health");
  EXPECT_NE(plain.out.find("000"), std::string::npos) << plain.out;

  // The client may see the refusal before the server has counted it: poll the counter.
  eptest::Shell m;
  EXPECT_TRUE(wait_until([&] {
    m = eptest::curl_https(s->port(), "/metrics", cert_.cert);
    return m.out.find("ep_ingest_tls_handshake_failures_total 2\n") != std::string::npos;
  })) << m.out;
}

TEST_F(Tls, SighupServesTheNewCertificateAndABadFileKeepsTheCurrentOne) {
  auto s = start();
  std::string first = eptest::file_fingerprint(cert_.cert);
  ASSERT_NE(first.find("Fingerprint="), std::string::npos) << first;
  EXPECT_EQ(eptest::served_fingerprint(s->port()), first);

  auto next = eptest::make_cert(dir_, "next");
  std::string second = eptest::file_fingerprint(next.cert);
  ASSERT_NE(second, first);
  ASSERT_EQ(std::rename(next.key.c_str(), cert_.key.c_str()), 0);
  ASSERT_EQ(std::rename(next.cert.c_str(), cert_.cert.c_str()), 0);
  s->process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("SIGHUP: reloaded the TLS certificate") != std::string::npos; }))
      << s->process().err();
  EXPECT_EQ(eptest::served_fingerprint(s->port()), second);
  EXPECT_EQ(eptest::curl_https(s->port(), "/v1/health", cert_.cert).code, 0);

  write_text(cert_.cert, "not a certificate\n");
  s->process().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return s->process().err().find("keeping the previous TLS certificate") != std::string::npos; }))
      << s->process().err();
  EXPECT_NE(s->process().err().find("--tls-cert " + cert_.cert + ": "), std::string::npos) << s->process().err();
  EXPECT_EQ(eptest::served_fingerprint(s->port()), second);
}

TEST_F(Tls, UnusableCertificateOrAHalfPairIsAUsageError) {
  std::map<std::string, std::string> env = {{"API_KEY_HASH_SALT", kPepper}};
  Process half({EP_INGEST_BIN, "--keys", keys_path_, "--tls-cert", cert_.cert}, dir_, env);
  EXPECT_EQ(half.wait(), 64);
  EXPECT_NE(half.err().find("--tls-cert and --tls-key go together"), std::string::npos) << half.err();
  write_text(dir_ + "/bad.crt", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
  Process bad({EP_INGEST_BIN, "--keys", keys_path_, "--listen", "127.0.0.1:0", "--tls-cert", dir_ + "/bad.crt",
               "--tls-key", cert_.key},
              dir_, env);
  EXPECT_EQ(bad.wait(), 64);
  EXPECT_NE(bad.err().find("--tls-cert " + dir_ + "/bad.crt: "), std::string::npos) << bad.err();
  auto other = eptest::make_cert(dir_, "other");
  Process mismatch({EP_INGEST_BIN, "--keys", keys_path_, "--listen", "127.0.0.1:0", "--tls-cert", cert_.cert,
                    "--tls-key", other.key},
                   dir_, env);
  EXPECT_EQ(mismatch.wait(), 64);
  EXPECT_NE(mismatch.err().find("--tls-key"), std::string::npos) << mismatch.err();
}

}  // namespace
}  // namespace ep::ingest::test
