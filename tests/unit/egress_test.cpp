// The egress policy's classification, host spellings and allowlist — pure functions over
// addresses: nothing here opens a socket, let alone connects anywhere.
#include "ep/egress.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

using namespace ep::egress;

namespace {

Address addr(const char* text) {
  auto a = parse_address(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(Address{});
}

Class cls(const char* text) { return classify(addr(text)).cls; }

}  // namespace

TEST(Egress, ClassifiesEveryIpv4Range) {
  struct Row {
    const char* a;
    Class c;
  };
  const Row rows[] = {
      {"0.0.0.0", Class::kUnspecified},     {"0.255.255.255", Class::kUnspecified},
      {"10.0.0.1", Class::kPrivate},        {"10.255.255.255", Class::kPrivate},
      {"100.64.0.1", Class::kShared},       {"100.127.255.254", Class::kShared},
      {"127.0.0.1", Class::kLoopback},      {"127.255.255.254", Class::kLoopback},
      {"169.254.169.254", Class::kLinkLocal}, {"172.16.0.1", Class::kPrivate},
      {"172.31.255.255", Class::kPrivate},  {"192.0.0.8", Class::kReserved},
      {"192.0.2.1", Class::kDocumentation}, {"192.88.99.1", Class::kReserved},
      {"192.168.1.1", Class::kPrivate},     {"198.18.0.1", Class::kBenchmarking},
      {"198.19.255.255", Class::kBenchmarking}, {"198.51.100.7", Class::kDocumentation},
      {"203.0.113.9", Class::kDocumentation}, {"224.0.0.1", Class::kMulticast},
      {"239.255.255.250", Class::kMulticast}, {"240.0.0.1", Class::kReserved},
      {"255.255.255.254", Class::kReserved}, {"255.255.255.255", Class::kBroadcast},
      // Just outside the ranges: public.
      {"1.1.1.1", Class::kPublic},          {"9.255.255.255", Class::kPublic},
      {"11.0.0.0", Class::kPublic},         {"100.63.255.255", Class::kPublic},
      {"100.128.0.0", Class::kPublic},      {"126.255.255.255", Class::kPublic},
      {"128.0.0.0", Class::kPublic},        {"169.253.255.255", Class::kPublic},
      {"172.15.255.255", Class::kPublic},   {"172.32.0.0", Class::kPublic},
      {"192.167.255.255", Class::kPublic},  {"192.169.0.0", Class::kPublic},
      {"198.17.255.255", Class::kPublic},   {"198.20.0.0", Class::kPublic},
      {"223.255.255.255", Class::kPublic},
  };
  for (const Row& r : rows) EXPECT_EQ(cls(r.a), r.c) << r.a << ": " << describe(cls(r.a));
}

TEST(Egress, ClassifiesEveryIpv6Range) {
  struct Row {
    const char* a;
    Class c;
  };
  const Row rows[] = {
      {"::", Class::kUnspecified},         {"::1", Class::kLoopback},
      {"fe80::1", Class::kLinkLocal},      {"febf:ffff::1", Class::kLinkLocal},
      {"fec0::1", Class::kSiteLocal},      {"feff::1", Class::kSiteLocal},
      {"fc00::1", Class::kUniqueLocal},    {"fd12:3456::1", Class::kUniqueLocal},
      {"ff02::1", Class::kMulticast},      {"ff0e::fb", Class::kMulticast},
      {"2001:db8::1", Class::kDocumentation}, {"3fff::1", Class::kDocumentation},
      {"2001:2::1", Class::kBenchmarking}, {"2001:0:4136:e378::1", Class::kReserved},  // Teredo
      {"100::1", Class::kReserved},        {"64:ff9b:1::a00:1", Class::kPrivate},
      {"4000::1", Class::kReserved},       {"e000::1", Class::kReserved},
      {"2606:4700::1111", Class::kPublic}, {"2a00:1450::1", Class::kPublic},
      {"3ffe::1", Class::kPublic},
  };
  for (const Row& r : rows) EXPECT_EQ(cls(r.a), r.c) << r.a << ": " << describe(cls(r.a));
}

TEST(Egress, JudgesIpv4EmbeddedInIpv6ByTheIpv4Address) {
  struct Row {
    const char* a;
    Class c;
    const char* embedding;
    const char* v4;
  };
  const Row rows[] = {
      {"::ffff:127.0.0.1", Class::kLoopback, "IPv4-mapped", "127.0.0.1"},
      {"::ffff:7f00:1", Class::kLoopback, "IPv4-mapped", "127.0.0.1"},
      {"::ffff:169.254.169.254", Class::kLinkLocal, "IPv4-mapped", "169.254.169.254"},
      {"::ffff:10.0.0.1", Class::kPrivate, "IPv4-mapped", "10.0.0.1"},
      {"::ffff:0:10.1.2.3", Class::kPrivate, "IPv4-translated", "10.1.2.3"},
      {"::127.0.0.1", Class::kLoopback, "IPv4-compatible", "127.0.0.1"},
      {"::192.168.0.1", Class::kPrivate, "IPv4-compatible", "192.168.0.1"},
      {"::2", Class::kUnspecified, "IPv4-compatible", "0.0.0.2"},
      {"64:ff9b::127.0.0.1", Class::kLoopback, "NAT64", "127.0.0.1"},
      {"64:ff9b::a9fe:a9fe", Class::kLinkLocal, "NAT64", "169.254.169.254"},
      {"2002:7f00:1::", Class::kLoopback, "6to4", "127.0.0.1"},
      {"2002:a00:1::1", Class::kPrivate, "6to4", "10.0.0.1"},
      {"2002:c0a8:101::", Class::kPrivate, "6to4", "192.168.1.1"},
      // A public IPv4 inside is public.
      {"::ffff:1.1.1.1", Class::kPublic, "IPv4-mapped", "1.1.1.1"},
      {"64:ff9b::808:808", Class::kPublic, "NAT64", "8.8.8.8"},
      {"2002:808:808::1", Class::kPublic, "6to4", "8.8.8.8"},
  };
  for (const Row& r : rows) {
    Classification c = classify(addr(r.a));
    EXPECT_EQ(c.cls, r.c) << r.a;
    ASSERT_TRUE(c.embedded.has_value()) << r.a;
    EXPECT_EQ(c.embedded->str(), r.v4) << r.a;
    EXPECT_STREQ(c.embedding, r.embedding) << r.a;
  }
  EXPECT_FALSE(classify(addr("::1")).embedded.has_value());
  EXPECT_FALSE(classify(addr("::")).embedded.has_value());
}

TEST(Egress, DefaultPolicyDeniesEveryNonPublicClassAndAllowsPublic) {
  Policy p;
  for (const char* a : {"127.0.0.1", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.0.1",
                        "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255",
                        "240.0.0.1", "192.0.2.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1",
                        "fec0::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a9fe:a9fe::",
                        "2001:db8::1"}) {
    Verdict v = p.check(addr(a));
    EXPECT_FALSE(v.allowed) << a;
    EXPECT_FALSE(v.allowlisted) << a;
  }
  for (const char* a : {"1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:1.1.1.1"}) {
    Verdict v = p.check(addr(a));
    EXPECT_TRUE(v.allowed) << a;
    EXPECT_FALSE(v.allowlisted) << a;
  }
}

TEST(Egress, VerdictNamesAddressAndClass) {
  Policy p;
  EXPECT_EQ(p.check(addr("127.0.0.1")).describe(), "127.0.0.1, a loopback address");
  EXPECT_EQ(p.check(addr("169.254.169.254")).describe(), "169.254.169.254, a link-local address");
  EXPECT_EQ(p.check(addr("::ffff:10.0.0.1")).describe(),
            "::ffff:10.0.0.1 (IPv4-mapped 10.0.0.1), a private address");
  EXPECT_EQ(p.check(addr("::1")).describe(), "::1, a loopback address");
}

TEST(Egress, AllowlistOverridesTheDenialForItsRangesOnly) {
  auto p = Policy::from_strings({"127.0.0.0/8", "10.1.0.0/16", "fd00::/8", "192.168.7.7"});
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  for (const char* a : {"127.0.0.1", "127.9.9.9", "10.1.2.3", "fd00::5", "192.168.7.7",
                        "::ffff:127.0.0.1", "::ffff:10.1.0.1"}) {
    Verdict v = p->check(addr(a));
    EXPECT_TRUE(v.allowed) << a;
    EXPECT_TRUE(v.allowlisted) << a;
  }
  for (const char* a : {"10.2.0.1", "192.168.7.8", "::1", "fc00::1", "169.254.169.254", "172.16.0.1"})
    EXPECT_FALSE(p->check(addr(a)).allowed) << a;
  // An IPv6 allowlist entry covers IPv6 only, an IPv4 one IPv4 (and IPv4 embedded in IPv6).
  auto v6 = Policy::from_strings({"::1/128"});
  ASSERT_TRUE(v6.is_ok());
  EXPECT_TRUE(v6->check(addr("::1")).allowed);
  EXPECT_FALSE(v6->check(addr("127.0.0.1")).allowed);
  auto all = Policy::from_strings({"0.0.0.0/0", "::/0"});
  ASSERT_TRUE(all.is_ok());
  EXPECT_TRUE(all->check(addr("10.0.0.1")).allowed);
  EXPECT_TRUE(all->check(addr("fe80::1")).allowed);
}

TEST(Egress, CidrParsingRejectsTyposWithTheEntryNamed) {
  auto c = parse_cidr("172.16.0.0/12");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->str(), "172.16.0.0/12");
  EXPECT_TRUE(c->contains(addr("172.31.0.1")));
  EXPECT_FALSE(c->contains(addr("172.32.0.1")));
  EXPECT_FALSE(c->contains(addr("::ffff:172.16.0.1")));
  EXPECT_EQ(parse_cidr("fe80::/10")->prefix, 10);
  EXPECT_EQ(parse_cidr("10.0.0.7")->prefix, 32);
  EXPECT_EQ(parse_cidr("::1")->prefix, 128);
  EXPECT_EQ(parse_cidr("0.0.0.0/0")->prefix, 0);
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
                          "10.0.0.0/8x", "10.0.0/8", "localhost", "[::1]/128", "0x7f.0.0.1/8"})
    EXPECT_FALSE(parse_cidr(bad).is_ok()) << bad;
  auto host_bits = parse_cidr("10.0.0.1/8");
  ASSERT_FALSE(host_bits.is_ok());
  EXPECT_EQ(host_bits.status().message(), "10.0.0.1/8: bits set after the prefix (meant 10.0.0.0/8?)");
  auto p = Policy::from_strings({"127.0.0.0/8", "10.0.0.0/33"});
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().message(), "--allow-egress: 10.0.0.0/33: prefix length must be 0-32");
}

TEST(Egress, ParsesIpv4HostsTheWayInetAtonDoes) {
  struct Row {
    const char* host;
    const char* addr;
  };
  const Row rows[] = {
      {"127.0.0.1", "127.0.0.1"},   {"2130706433", "127.0.0.1"},   // decimal
      {"017700000001", "127.0.0.1"},                                // octal, one part
      {"0x7f000001", "127.0.0.1"},  {"0X7F000001", "127.0.0.1"},    // hex, one part
      {"0177.0.0.1", "127.0.0.1"},  {"0x7f.0.0.1", "127.0.0.1"},
      {"0x7f.0x0.0x0.0x1", "127.0.0.1"}, {"0177.0000.0000.0001", "127.0.0.1"},
      {"127.1", "127.0.0.1"},       {"127.0.1", "127.0.0.1"},      // short forms
      {"0x7f.1", "127.0.0.1"},      {"10.65536", "10.1.0.0"},
      {"0", "0.0.0.0"},             {"0.0.0.0", "0.0.0.0"},        {"0x0", "0.0.0.0"},
      {"169.254.43518", "169.254.169.254"}, {"2852039166", "169.254.169.254"},
      {"0xa9fea9fe", "169.254.169.254"}, {"4294967295", "255.255.255.255"},
      {"127.0.0.1.", "127.0.0.1"},  // a trailing dot changes nothing
  };
  // glibc's inet_aton (a pure function: nothing is resolved) agrees on every row.
  auto aton = [](const char* host) -> std::string {
    in_addr in{};
    if (inet_aton(host, &in) == 0) return "rejected";
    char buf[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &in, buf, sizeof buf);
  };
  for (const Row& r : rows) {
    auto a = parse_host(r.host);
    ASSERT_TRUE(a.has_value()) << r.host;
    EXPECT_FALSE(a->v6) << r.host;
    EXPECT_EQ(a->str(), r.addr) << r.host;
    if (std::string(r.host).back() != '.') {
      EXPECT_EQ(aton(r.host), r.addr) << r.host;
    }
  }
  // Names, or not numbers inet_aton accepts: left to the resolver (and the connect check).
  for (const char* h : {"example.com", "4294967296", "256.0.0.1", "1.2.3.4.5", "08.0.0.1",
                        "0x1g.0.0.1", "1..1", ".1", "1.2.3.256", "1.2.65536", "1.16777216",
                        "127.0.0.1x", "-1", "+1", " 1", "0xfffffffff", "localhost", "",
                        "99999999999999999999999", "0x", "0x.0.0.1"}) {
    EXPECT_FALSE(parse_host(h).has_value()) << h;
    EXPECT_EQ(aton(h), "rejected") << h;
  }
}

TEST(Egress, ParsesBracketedIpv6HostsWithZoneIds) {
  struct Row {
    const char* host;
    const char* addr;
  };
  const Row rows[] = {
      {"[::1]", "::1"},
      {"[0:0:0:0:0:0:0:1]", "::1"},
      {"[::ffff:127.0.0.1]", "::ffff:127.0.0.1"},
      {"[::ffff:7f00:1]", "::ffff:127.0.0.1"},
      {"[fe80::1%25eth0]", "fe80::1"},
      {"[fe80::1%eth0]", "fe80::1"},
      {"[::1%25lo]", "::1"},
      {"[FD00::ABCD]", "fd00::abcd"},
  };
  for (const Row& r : rows) {
    auto a = parse_host(r.host);
    ASSERT_TRUE(a.has_value()) << r.host;
    EXPECT_TRUE(a->v6) << r.host;
    EXPECT_EQ(a->str(), r.addr) << r.host;
  }
  for (const char* h : {"[127.0.0.1]", "[::1", "::1", "[]", "[:::1]", "[localhost]"})
    EXPECT_FALSE(parse_host(h).has_value()) << h;
}

TEST(Egress, LocalhostNames) {
  for (const char* h : {"localhost", "LOCALHOST", "localhost.", "api.localhost", "a.b.LocalHost.",
                        "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
    EXPECT_TRUE(is_localhost_name(h)) << h;
  for (const char* h : {"localhost.example.com", "mylocalhost", "localhostx", "example.com", ""})
    EXPECT_FALSE(is_localhost_name(h)) << h;
}

TEST(Egress, UrlHost) {
  EXPECT_EQ(url_host("http://127.0.0.1:8080/hook"), "127.0.0.1");
  EXPECT_EQ(url_host("https://user:pw@Example.com/x?y#z"), "Example.com");
  EXPECT_EQ(url_host("http://[::1]:80/"), "[::1]");
  EXPECT_EQ(url_host("http://[fe80::1%25eth0]/"), "[fe80::1%25eth0]");
  EXPECT_EQ(url_host("http://a@b@2130706433"), "2130706433");
  EXPECT_EQ(url_host("http://h?x=1"), "h");
  EXPECT_EQ(url_host("http://h#x"), "h");
  EXPECT_EQ(url_host("no-scheme"), "");
  EXPECT_EQ(url_host("http:///path"), "");
}

TEST(Egress, CheckUrlRefusesEverySpellingOfADeniedHost) {
  Policy p;
  struct Row {
    const char* url;
    const char* message;
  };
  const Row rows[] = {
      {"http://127.0.0.1:9/", "host 127.0.0.1 is a loopback address, which the egress policy denies"},
      {"http://169.254.169.254/latest/meta-data/",
       "host 169.254.169.254 is a link-local address, which the egress policy denies"},
      {"http://10.0.0.1/", "host 10.0.0.1 is a private address, which the egress policy denies"},
      {"http://[::1]/", "host [::1] is a loopback address, which the egress policy denies"},
      {"http://localhost/", "host localhost is a loopback name, which the egress policy denies"},
      {"http://hooks.LOCALHOST:8080/", "host hooks.LOCALHOST is a loopback name, which the egress policy denies"},
      {"http://0.0.0.0/",
       "host 0.0.0.0 is an unspecified (this-network) address, which the egress policy denies"},
      {"http://2130706433/",
       "host 2130706433 is 127.0.0.1, a loopback address, which the egress policy denies"},
      {"http://0177.0.0.1/", "host 0177.0.0.1 is 127.0.0.1, a loopback address, which the egress policy denies"},
      {"http://0x7f.0.0.1/", "host 0x7f.0.0.1 is 127.0.0.1, a loopback address, which the egress policy denies"},
      {"http://127.1/", "host 127.1 is 127.0.0.1, a loopback address, which the egress policy denies"},
      {"https://u@0xa9fea9fe/x", "host 0xa9fea9fe is 169.254.169.254, a link-local address, which the egress policy denies"},
      {"http://[::ffff:127.0.0.1]/",
       "host [::ffff:127.0.0.1] is ::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1), a loopback address, "
       "which the egress policy denies"},
      {"http://[fe80::1%25eth0]/",
       "host [fe80::1%25eth0] is fe80::1, a link-local address, which the egress policy denies"},
      {"http://[fd00::1]:80/", "host [fd00::1] is a unique-local address, which the egress policy denies"},
      {"http://100.64.0.1/", "host 100.64.0.1 is a shared (carrier-grade NAT) address, which the egress policy denies"},
      {"http://[64:ff9b::a00:1]/",
       "host [64:ff9b::a00:1] is 64:ff9b::a00:1 (NAT64 10.0.0.1), a private address, which the egress policy denies"},
      {"http://%31%32%37.0.0.1/", "host %31%32%37.0.0.1: percent-encoded host names are not accepted"},
      {"http://[zz]/", "host [zz]: not an IPv6 address"},
      {"http:///x", "no host"},
  };
  for (const Row& r : rows) {
    ep::Status st = p.check_url(r.url);
    EXPECT_EQ(st.code(), ep::Code::kUsage) << r.url;
    EXPECT_EQ(st.message(), r.message) << r.url;
  }
  // Names are not resolved here; public literals pass.
  for (const char* ok : {"https://hooks.example.com/x", "http://1.1.1.1/", "http://[2606:4700::1111]/",
                         "https://localhost.example.com/"})
    EXPECT_TRUE(p.check_url(ok).is_ok()) << ok;
  auto allow = Policy::from_strings({"127.0.0.0/8"});
  ASSERT_TRUE(allow.is_ok());
  for (const char* ok : {"http://127.0.0.1:9/", "http://2130706433/", "http://localhost:8/",
                         "http://[::ffff:127.0.0.1]/"})
    EXPECT_TRUE(allow->check_url(ok).is_ok()) << ok;
  EXPECT_FALSE(allow->check_url("http://[::1]/").is_ok());
  EXPECT_FALSE(allow->check_url("http://10.0.0.1/").is_ok());
}

TEST(Egress, FromSockaddr) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(80);
  inet_pton(AF_INET, "169.254.169.254", &in.sin_addr);
  auto a = from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->str(), "169.254.169.254");
  EXPECT_EQ(classify(*a).cls, Class::kLinkLocal);
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
  in6.sin6_scope_id = 3;
  auto b = from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->v6);
  EXPECT_EQ(classify(*b).cls, Class::kLoopback);
  EXPECT_FALSE(from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in).has_value());
  sockaddr un{};
  un.sa_family = AF_UNIX;
  EXPECT_FALSE(from_sockaddr(&un, sizeof un).has_value());
  EXPECT_FALSE(from_sockaddr(nullptr, 0).has_value());
}
