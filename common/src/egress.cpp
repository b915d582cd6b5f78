#include "ep/egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <charconv>
#include <algorithm>
#include <cstring>
#include <utility>

namespace ep::egress {

Address Address::v4(std::uint32_t host_order) {
  Address a;
  for (int i = 0; i < 4; ++i) a.bytes[i] = static_cast<std::uint8_t>(host_order >> (24 - 8 * i));
  return a;
}

std::string Address::str() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Address> parse_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  Address a;
  a.v6 = s.find(':') != std::string::npos;
  if (inet_pton(a.v6 ? AF_INET6 : AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::optional<Address> from_sockaddr(const sockaddr* sa, size_t len) {
  if (!sa || len < sizeof(sa_family_t)) return std::nullopt;
  Address a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    std::memcpy(a.bytes.data(), &in.sin_addr, 4);
    return a;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof in6);
    a.v6 = true;
    std::memcpy(a.bytes.data(), &in6.sin6_addr, 16);
    return a;
  }
  return std::nullopt;
}

const char* describe(Class c) {
  switch (c) {
    case Class::kPublic: return "a public address";
    case Class::kLoopback: return "a loopback address";
    case Class::kUnspecified: return "an unspecified (this-network) address";
    case Class::kLinkLocal: return "a link-local address";
    case Class::kPrivate: return "a private address";
    case Class::kShared: return "a shared (carrier-grade NAT) address";
    case Class::kMulticast: return "a multicast address";
    case Class::kBroadcast: return "the broadcast address";
    case Class::kReserved: return "a reserved address";
    case Class::kUniqueLocal: return "a unique-local address";
    case Class::kSiteLocal: return "a site-local address";
    case Class::kDocumentation: return "a documentation address";
    case Class::kBenchmarking: return "a benchmarking address";
  }
  return "a reserved address";
}

bool Cidr::contains(const Address& a) const {
  if (a.v6 != net.v6) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes.data(), net.bytes.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[static_cast<size_t>(full)] & mask) == net.bytes[static_cast<size_t>(full)];
}

std::string Cidr::str() const { return net.str() + "/" + std::to_string(prefix); }

Result<Cidr> parse_cidr(std::string_view text) {
  std::string_view addr = text, len;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = text.substr(slash + 1);
  }
  auto a = parse_address(addr);
  if (!a) return Status::usage(std::string(text) + ": not an IPv4 or IPv6 address or CIDR");
  Cidr c{*a, static_cast<int>(a->bits())};
  if (!len.empty() || text.back() == '/') {
    auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), c.prefix);
    if (ec != std::errc() || p != len.data() + len.size() || c.prefix < 0 ||
        c.prefix > static_cast<int>(a->bits()))
      return Status::usage(std::string(text) + ": prefix length must be 0-" +
                           std::to_string(a->bits()));
  }
  Cidr masked = c;
  for (size_t i = 0; i < 16; ++i) {
    int keep = std::clamp(c.prefix - static_cast<int>(8 * i), 0, 8);
    masked.net.bytes[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
  if (!(masked.net == c.net))
    return Status::usage(std::string(text) + ": bits set after the prefix (meant " + masked.str() +
                         "?)");
  return c;
}

namespace {

struct Range {
  Cidr cidr;
  Class cls;
};

std::vector<Range> make_table(std::initializer_list<std::pair<const char*, Class>> rows) {
  std::vector<Range> t;
  for (const auto& [text, cls] : rows) t.push_back({*parse_cidr(text), cls});
  return t;
}

// First match wins.
const std::vector<Range>& v4_table() {
  static const std::vector<Range> t = make_table({
      {"0.0.0.0/8", Class::kUnspecified},
      {"10.0.0.0/8", Class::kPrivate},
      {"100.64.0.0/10", Class::kShared},
      {"127.0.0.0/8", Class::kLoopback},
      {"169.254.0.0/16", Class::kLinkLocal},
      {"172.16.0.0/12", Class::kPrivate},
      {"192.0.0.0/24", Class::kReserved},  // IETF protocol assignments
      {"192.0.2.0/24", Class::kDocumentation},
      {"192.88.99.0/24", Class::kReserved},  // 6to4 relay anycast (deprecated)
      {"192.168.0.0/16", Class::kPrivate},
      {"198.18.0.0/15", Class::kBenchmarking},
      {"198.51.100.0/24", Class::kDocumentation},
      {"203.0.113.0/24", Class::kDocumentation},
      {"224.0.0.0/4", Class::kMulticast},
      {"255.255.255.255/32", Class::kBroadcast},
      {"240.0.0.0/4", Class::kReserved},
  });
  return t;
}

// After the embedded-IPv4 forms; anything else outside 2000::/3 is reserved.
const std::vector<Range>& v6_table() {
  static const std::vector<Range> t = make_table({
      {"::/128", Class::kUnspecified},
      {"::1/128", Class::kLoopback},
      {"64:ff9b:1::/48", Class::kPrivate},  // local-use NAT64
      {"100::/64", Class::kReserved},       // discard-only
      {"2001::/32", Class::kReserved},      // Teredo
      {"2001:2::/48", Class::kBenchmarking},
      {"2001:db8::/32", Class::kDocumentation},
      {"3fff::/20", Class::kDocumentation},
      {"fc00::/7", Class::kUniqueLocal},
      {"fe80::/10", Class::kLinkLocal},
      {"fec0::/10", Class::kSiteLocal},
      {"ff00::/8", Class::kMulticast},
      {"2000::/3", Class::kPublic},
      {"::/0", Class::kReserved},
  });
  return t;
}

Class lookup(const std::vector<Range>& table, const Address& a) {
  for (const Range& r : table)
    if (r.cidr.contains(a)) return r.cls;
  return Class::kPublic;
}

struct Embedding {
  Cidr cidr;
  size_t offset;  // of the IPv4 bytes
  const char* name;
};

// IPv6 forms that carry an IPv4 address; :: and ::1 are not among them.
const std::vector<Embedding>& embeddings() {
  static const std::vector<Embedding> t = {
      {*parse_cidr("::ffff:0:0/96"), 12, "IPv4-mapped"},
      {*parse_cidr("::ffff:0:0:0/96"), 12, "IPv4-translated"},
      {*parse_cidr("::/96"), 12, "IPv4-compatible"},
      {*parse_cidr("64:ff9b::/96"), 12, "NAT64"},
      {*parse_cidr("2002::/16"), 2, "6to4"},
  };
  return t;
}

}  // namespace

Classification classify(const Address& a) {
  if (!a.v6) return {lookup(v4_table(), a), std::nullopt, ""};
  Class own = lookup(v6_table(), a);
  if (own == Class::kUnspecified || own == Class::kLoopback) return {own, std::nullopt, ""};
  for (const Embedding& e : embeddings()) {
    if (!e.cidr.contains(a)) continue;
    Address v4;
    std::memcpy(v4.bytes.data(), a.bytes.data() + e.offset, 4);
    return {lookup(v4_table(), v4), v4, e.name};
  }
  return {own, std::nullopt, ""};
}

std::string Verdict::describe() const {
  std::string s = address.str();
  if (why.embedded) s += std::string(" (") + why.embedding + " " + why.embedded->str() + ")";
  return s + ", " + egress::describe(why.cls);
}

Result<Policy> Policy::from_strings(const std::vector<std::string>& allow) {
  Policy p;
  for (const auto& text : allow) {
    auto c = parse_cidr(text);
    if (!c) return c.status().with_context("--allow-egress");
    p.allow(*c);
  }
  return p;
}

Verdict Policy::check(const Address& a) const {
  Verdict v;
  v.address = a;
  v.why = classify(a);
  if (v.why.cls == Class::kPublic) return v;
  for (const Cidr& c : allow_)
    if (c.contains(a) || (v.why.embedded && c.contains(*v.why.embedded))) {
      v.allowlisted = true;
      return v;
    }
  v.allowed = false;
  return v;
}

std::string_view url_host(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view auth = url.substr(scheme + 3);
  auth = auth.substr(0, auth.find_first_of("/?#"));
  if (auto at = auth.rfind('@'); at != std::string_view::npos) auth.remove_prefix(at + 1);
  if (!auth.empty() && auth.front() == '[') {
    auto close = auth.find(']');
    return close == std::string_view::npos ? auth : auth.substr(0, close + 1);
  }
  return auth.substr(0, auth.find(':'));
}

namespace {

// One part of an inet_aton address: decimal, octal (leading 0) or hex (0x + digits).
std::optional<std::uint32_t> aton_part(std::string_view s) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return std::nullopt;
  unsigned base = 10;
  if (s.size() > 1 && s[0] == '0') {
    bool hex = s[1] == 'x' || s[1] == 'X';
    base = hex ? 16 : 8;
    s.remove_prefix(hex ? 2 : 1);
    if (hex && s.empty()) return std::nullopt;
  }
  std::uint64_t v = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(ch)));
    unsigned d = std::isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > 0xffffffffu) return std::nullopt;
  }
  return static_cast<std::uint32_t>(v);
}

// inet_aton: a, a.b (b: 24 bits), a.b.c (c: 16 bits), a.b.c.d.
std::optional<Address> parse_aton(std::string_view s) {
  std::vector<std::uint32_t> parts;
  while (true) {
    auto dot = s.find('.');
    auto p = aton_part(s.substr(0, dot));
    if (!p || parts.size() == 4) return std::nullopt;
    parts.push_back(*p);
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  std::uint32_t v = 0;
  size_t n = parts.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    if (parts[i] > 0xff) return std::nullopt;
    v |= parts[i] << (24 - 8 * i);
  }
  std::uint64_t last_max = (std::uint64_t{1} << (8 * (5 - n))) - 1;
  if (parts.back() > last_max) return std::nullopt;
  return Address::v4(v | parts.back());
}

std::string_view without_trailing_dot(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

}  // namespace

std::optional<Address> parse_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::string_view inner = host.substr(1, host.size() - 2);
    inner = inner.substr(0, inner.find('%'));  // zone id: %25eth0 or %eth0
    auto a = parse_address(inner);
    if (!a || !a->v6) return std::nullopt;
    return a;
  }
  return parse_aton(without_trailing_dot(host));
}

bool is_localhost_name(std::string_view host) {
  std::string h(without_trailing_dot(host));
  for (char& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto ends_with = [&](std::string_view suffix) {
    return h.size() >= suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return h == "localhost" || ends_with(".localhost") || h == "localhost.localdomain" ||
         h == "ip6-localhost" || h == "ip6-loopback";
}

Status Policy::check_url(std::string_view url) const {
  std::string_view host = url_host(url);
  std::string h(host);
  if (host.empty()) return Status::usage("no host");
  if (host.front() != '[' && host.find('%') != std::string_view::npos)
    return Status::usage("host " + h + ": percent-encoded host names are not accepted");
  if (is_localhost_name(host)) {
    if (check(*parse_address("127.0.0.1")).allowed || check(*parse_address("::1")).allowed)
      return Status::ok();
    return Status::usage("host " + h + " is a loopback name, which the egress policy denies");
  }
  auto a = parse_host(host);
  if (!a) {
    if (host.front() == '[') return Status::usage("host " + h + ": not an IPv6 address");
    return Status::ok();  // a name: checked where it is resolved, at delivery
  }
  Verdict v = check(*a);
  if (v.allowed) return Status::ok();
  std::string what = v.describe();
  std::string plain = host.front() == '[' ? h.substr(1, h.size() - 2) : h;
  if (what.compare(0, plain.size() + 2, plain + ", ") == 0)
    what = what.substr(plain.size() + 2);  // spelled as printed: "host 10.0.0.1 is a private …"
  return Status::usage("host " + h + " is " + what + ", which the egress policy denies");
}

}  // namespace ep::egress
