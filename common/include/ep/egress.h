#pragma once
// The outbound (egress) policy: which addresses a tool may connect to on a tenant's
// behalf (webhook deliveries), so a tenant cannot point a webhook at the operator's own
// network — loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT,
// multicast, reserved and documentation ranges are denied. IPv4 embedded in IPv6
// (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 64:ff9b::/96, 6to4 2002::/16) is
// judged by the IPv4 address inside. An operator's allowlist of CIDRs (on-premises
// receivers) overrides the denial.
//
// ep-alert checks the address it actually connects to (after DNS, --resolve, everything);
// that check is the authoritative one. ep-api checks a URL when a webhook is created:
// IP literals in any spelling inet_aton/curl accept (2130706433, 0177.0.0.1, 0x7f.1,
// 127.1, [::ffff:127.0.0.1], [fe80::1%25eth0]) and localhost names; it resolves nothing.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ep/status.h"

struct sockaddr;

namespace ep::egress {

// An IPv4 or IPv6 address, bytes in network order (IPv4: the first four).
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  static Address v4(std::uint32_t host_order);
  size_t bits() const { return v6 ? 128 : 32; }
  std::string str() const;  // inet_ntop's form: "127.0.0.1", "::ffff:127.0.0.1"
  bool operator==(const Address&) const = default;
};

// A strict numeric address as inet_pton reads it: "10.1.2.3" or "fd00::1" (no brackets).
std::optional<Address> parse_address(std::string_view text);
// AF_INET / AF_INET6 socket addresses; nullopt for other families or a short length.
std::optional<Address> from_sockaddr(const sockaddr* sa, size_t len);

enum class Class {
  kPublic,
  kLoopback,       // 127/8, ::1, localhost names
  kUnspecified,    // 0/8, ::
  kLinkLocal,      // 169.254/16, fe80::/10
  kPrivate,        // 10/8, 172.16/12, 192.168/16, 64:ff9b:1::/48
  kShared,         // 100.64/10 (carrier-grade NAT)
  kMulticast,      // 224/4, ff00::/8
  kBroadcast,      // 255.255.255.255
  kReserved,       // 240/4, 192.0.0/24, 192.88.99/24, 100::/64, Teredo, outside 2000::/3
  kUniqueLocal,    // fc00::/7
  kSiteLocal,      // fec0::/10
  kDocumentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
  kBenchmarking,   // 198.18/15, 2001:2::/48
};
// "a loopback address", "a private address", …
const char* describe(Class c);

struct Classification {
  Class cls = Class::kPublic;
  // The IPv4 address inside an IPv6 one, when it decided the class.
  std::optional<Address> embedded;
  const char* embedding = "";  // "IPv4-mapped", "NAT64", "6to4", …
};
Classification classify(const Address& a);

struct Cidr {
  Address net;
  int prefix = 0;
  bool contains(const Address& a) const;
  std::string str() const;
};
// "10.0.0.0/8", "fd00::/8", or one address ("192.168.1.7" = /32, "fd00::7" = /128).
// Host bits set after the prefix are an error (a typo would allow more than meant).
Result<Cidr> parse_cidr(std::string_view text);

struct Verdict {
  bool allowed = true;
  bool allowlisted = false;  // a non-public address the allowlist lets through
  Address address;
  Classification why;
  // "127.0.0.1, a loopback address"; "::ffff:10.0.0.1 (IPv4-mapped 10.0.0.1), a private address"
  std::string describe() const;
};

class Policy {
 public:
  Policy() = default;  // nothing allowlisted: every non-public class is denied
  // From --allow-egress values; errors name the bad entry.
  static Result<Policy> from_strings(const std::vector<std::string>& allow);
  void allow(const Cidr& c) { allow_.push_back(c); }
  const std::vector<Cidr>& allowlist() const { return allow_; }

  // Public addresses are allowed; others when the allowlist holds the address or the
  // IPv4 address embedded in it.
  Verdict check(const Address& a) const;
  // A URL before any connection: its host, if an IP literal (any spelling) or a localhost
  // name, must pass check(). Names are not resolved: the connect-time check decides
  // them. Error (kUsage): "host 0x7f.1 is 127.0.0.1, a loopback address, which the
  // egress policy denies".
  Status check_url(std::string_view url) const;

 private:
  std::vector<Cidr> allow_;
};

// The host of an absolute URL as a client connects to it: after "scheme://" and any
// "userinfo@", without the port; IPv6 literals keep their brackets. Empty when absent.
std::string_view url_host(std::string_view url);
// A URL host that is an IP literal: IPv4 in every form inet_aton and curl accept (one to
// four parts, each decimal, octal with a leading 0, or hex with 0x; the last part fills
// the remaining bytes), or "[IPv6]" with an optional zone id (%25eth0). nullopt: a name.
std::optional<Address> parse_host(std::string_view host);
// localhost, *.localhost (RFC 6761), localhost.localdomain, ip6-localhost, ip6-loopback;
// any case, with or without a trailing dot.
bool is_localhost_name(std::string_view host);

}  // namespace ep::egress
