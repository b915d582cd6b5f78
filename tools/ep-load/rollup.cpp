#include "rollup.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ep::load {

namespace {

// Unsigned big numbers: base 1e9 limbs, least significant first, no leading zero limbs.
using Big = std::vector<std::uint32_t>;
constexpr std::uint32_t kBase = 1'000'000'000;

void trim(Big& a) {
  while (!a.empty() && a.back() == 0) a.pop_back();
}

Big big_of(unsigned __int128 x) {
  Big a;
  while (x > 0) {
    a.push_back(static_cast<std::uint32_t>(x % kBase));
    x /= kBase;
  }
  return a;
}

void big_add(Big& a, const Big& b) {
  if (a.size() < b.size()) a.resize(b.size(), 0);
  std::uint64_t carry = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    std::uint64_t s = carry + a[i] + (i < b.size() ? b[i] : 0);
    a[i] = static_cast<std::uint32_t>(s % kBase);
    carry = s / kBase;
  }
  if (carry) a.push_back(static_cast<std::uint32_t>(carry));
}

int big_cmp(const Big& a, const Big& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

// a -= b, a >= b.
void big_sub(Big& a, const Big& b) {
  std::int64_t borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    std::int64_t d = static_cast<std::int64_t>(a[i]) - borrow - (i < b.size() ? b[i] : 0);
    borrow = d < 0;
    a[i] = static_cast<std::uint32_t>(d < 0 ? d + kBase : d);
  }
  trim(a);
}

// a *= 10^k.
void big_shift10(Big& a, int k) {
  if (a.empty()) return;
  a.insert(a.begin(), static_cast<size_t>(k / 9), 0);
  std::uint64_t mul = 1;
  for (int i = 0; i < k % 9; ++i) mul *= 10;
  std::uint64_t carry = 0;
  for (auto& limb : a) {
    std::uint64_t p = limb * mul + carry;
    limb = static_cast<std::uint32_t>(p % kBase);
    carry = p / kBase;
  }
  if (carry) a.push_back(static_cast<std::uint32_t>(carry));
}

std::string big_digits(const Big& a) {
  if (a.empty()) return "0";
  std::string s = std::to_string(a.back());
  char buf[10];
  for (size_t i = a.size() - 1; i-- > 0;) {
    std::snprintf(buf, sizeof buf, "%09u", a[i]);
    s += buf;
  }
  return s;
}

}  // namespace

void shortest_decimal(double v, std::int64_t& c, int& e) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  // "-d.ddde+XX": the shortest digits that read back as v.
  const char* p = buf;
  bool neg = *p == '-';
  if (neg) ++p;
  std::int64_t m = 0;
  int digits = 0;
  for (; p < r.ptr && *p != 'e'; ++p) {
    if (*p == '.') continue;
    m = m * 10 + (*p - '0');
    ++digits;
  }
  int x = 0;
  std::from_chars(p + 1 + (p[1] == '+'), r.ptr, x);
  c = neg ? -m : m;
  e = x - (digits - 1);
}

DecimalSum::Term& DecimalSum::term(int exp) {
  for (auto& t : terms_)
    if (t.exp == exp) return t;
  terms_.push_back(Term{exp, 0, 0, {}, {}});
  return terms_.back();
}

void DecimalSum::add(unsigned __int128 mag, bool negative, int exp) {
  Term& t = term(exp);
  unsigned __int128& acc = negative ? t.neg : t.pos;
  if (__builtin_add_overflow(acc, mag, &acc)) {
    // acc wrapped: spill the value before the addition and keep mag.
    big_add(negative ? t.neg_big : t.pos_big, big_of(acc - mag));
    acc = mag;
  }
}

void DecimalSum::add_decimal(std::int64_t c, int e, bool square) {
  unsigned __int128 m = c < 0 ? static_cast<unsigned __int128>(-(c + 1)) + 1 : static_cast<unsigned __int128>(c);
  if (square) add(m * m, false, 2 * e);  // |c| < 10^17: the square fits
  else add(m, c < 0, e);
}

void DecimalSum::add_value(double v) {
  std::int64_t c;
  int e;
  shortest_decimal(v, c, e);
  add_decimal(c, e, false);
}

void DecimalSum::add_square(double v) {
  std::int64_t c;
  int e;
  shortest_decimal(v, c, e);
  add_decimal(c, e, true);
}

void DecimalSum::merge(const DecimalSum& o) {
  for (const auto& ot : o.terms_) {
    add(ot.pos, false, ot.exp);
    add(ot.neg, true, ot.exp);
    Term& t = term(ot.exp);
    if (!ot.pos_big.empty()) big_add(t.pos_big, ot.pos_big);
    if (!ot.neg_big.empty()) big_add(t.neg_big, ot.neg_big);
  }
}

namespace {

// The common case: every term fits one signed 128-bit total at the finest exponent.
bool small_total(const std::vector<DecimalSum::TermView>& terms, int emin, __int128& total) {
  total = 0;
  for (const auto& t : terms) {
    if (t.spilled || t.pos > static_cast<unsigned __int128>(INT64_MAX) * INT64_MAX ||
        t.neg > static_cast<unsigned __int128>(INT64_MAX) * INT64_MAX || t.exp - emin > 36)
      return false;
    __int128 v = static_cast<__int128>(t.pos) - static_cast<__int128>(t.neg);
    for (int k = 0; k < t.exp - emin; ++k)
      if (__builtin_mul_overflow(v, 10, &v)) return false;
    if (__builtin_add_overflow(total, v, &total)) return false;
  }
  return true;
}

std::string digits_of(unsigned __int128 m) {
  char buf[48];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + static_cast<int>(m % 10));
    m /= 10;
  } while (m > 0);
  return std::string(p, buf + sizeof buf);
}

// sign + digits scaled by 10^emin as a numeral with max(0, -emin) fraction digits.
std::string numeral(bool negative, std::string d, int emin) {
  if (emin >= 0) {
    if (d != "0") d.append(static_cast<size_t>(emin), '0');
  } else {
    auto scale = static_cast<size_t>(-emin);
    if (d.size() <= scale) d.insert(0, scale + 1 - d.size(), '0');
    d.insert(d.size() - scale, ".");
  }
  return (negative ? "-" : "") + d;
}

}  // namespace

std::string DecimalSum::str() const {
  if (terms_.empty()) return "0";
  int emin = terms_.front().exp;
  for (const auto& t : terms_) emin = std::min(emin, t.exp);
  std::vector<TermView> views;
  views.reserve(terms_.size());
  for (const auto& t : terms_)
    views.push_back(TermView{t.exp, t.pos, t.neg, !t.pos_big.empty() || !t.neg_big.empty()});
  if (__int128 total; small_total(views, emin, total)) {
    bool negative = total < 0;
    unsigned __int128 m = negative ? static_cast<unsigned __int128>(-(total + 1)) + 1 : static_cast<unsigned __int128>(total);
    return numeral(negative, digits_of(m), emin);
  }
  Big pos, neg;
  for (const auto& t : terms_) {
    for (int side = 0; side < 2; ++side) {
      Big m = big_of(side == 0 ? t.pos : t.neg);
      big_add(m, side == 0 ? t.pos_big : t.neg_big);
      big_shift10(m, t.exp - emin);
      big_add(side == 0 ? pos : neg, m);
    }
  }
  bool negative = big_cmp(pos, neg) < 0;
  if (negative) {
    big_sub(neg, pos);
    pos.swap(neg);
  } else {
    big_sub(pos, neg);
  }
  return numeral(negative, big_digits(pos), emin);
}

std::int64_t bucket_of(std::int64_t ts_us, std::int64_t width) {
  std::int64_t q = ts_us / width;
  if (ts_us % width != 0 && ts_us < 0) --q;
  return q * width;
}

void Partial::merge(const Partial& o) {
  n += o.n;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  sum.merge(o.sum);
  sumsq.merge(o.sumsq);
  if (o.first_ts_us < first_ts_us) {
    first_ts_us = o.first_ts_us;
    first_value = o.first_value;
  }
  if (o.last_ts_us > last_ts_us) {
    last_ts_us = o.last_ts_us;
    last_value = o.last_value;
  }
}

namespace {

// Coarser partials from finer ones in (tenant, metric, bucket) order.
std::vector<Partial> coarsen(const std::vector<Partial>& fine, std::int64_t width) {
  std::vector<Partial> out;
  for (const Partial& p : fine) {
    std::int64_t b = bucket_of(p.bucket_us, width);
    if (!out.empty() && out.back().bucket_us == b && out.back().metric == p.metric && out.back().tenant == p.tenant) {
      out.back().merge(p);
    } else {
      out.push_back(p);
      out.back().bucket_us = b;
    }
  }
  return out;
}

}  // namespace

Rollups aggregate(const std::vector<RollupPoint>& points) {
  Rollups r;
  for (const RollupPoint& pt : points) {
    std::int64_t b = bucket_of(pt.ts_us, kUsPerMinute);
    if (r.minute.empty() || r.minute.back().bucket_us != b || !(r.minute.back().metric == pt.metric) ||
        !(r.minute.back().tenant == pt.tenant)) {
      Partial p;
      p.tenant = pt.tenant;
      p.metric = pt.metric;
      p.bucket_us = b;
      p.min = p.max = p.first_value = p.last_value = pt.value;
      p.first_ts_us = p.last_ts_us = pt.ts_us;
      r.minute.push_back(std::move(p));
    }
    Partial& p = r.minute.back();
    ++p.n;
    p.min = std::min(p.min, pt.value);
    p.max = std::max(p.max, pt.value);
    std::int64_t c;
    int e;
    shortest_decimal(pt.value, c, e);
    p.sum.add_decimal(c, e, false);
    p.sumsq.add_decimal(c, e, true);
    if (pt.ts_us < p.first_ts_us) {
      p.first_ts_us = pt.ts_us;
      p.first_value = pt.value;
    }
    if (pt.ts_us >= p.last_ts_us) {
      p.last_ts_us = pt.ts_us;
      p.last_value = pt.value;
    }
  }
  r.hour = coarsen(r.minute, kUsPerHour);
  r.day = coarsen(r.hour, kUsPerDay);
  return r;
}

Status create_rollup_stage(pg::Conn& c) {
  return c.run(
      "CREATE TEMP TABLE IF NOT EXISTS ep_load_rollup (res int2, tenant_id uuid, metric_id uuid, bucket timestamptz,"
      " n int8, min float8, max float8, sum text, sumsq text, first_ts timestamptz, first_value float8,"
      " last_ts timestamptz, last_value float8) ON COMMIT DELETE ROWS");
}

namespace {

constexpr size_t kCopyChunk = 1 << 20;
constexpr const char* kTables[] = {"rollups_1m", "rollups_1h", "rollups_1d"};

// One statement per resolution: the partials merged into existing buckets. Rows are
// taken in key order so concurrent loaders lock buckets in the same order.
std::string upsert_sql(int res) {
  std::string t = kTables[res];
  return "INSERT INTO " + t +
         " AS r (tenant_id, metric_id, bucket, n, min, max, sum, sumsq, first_ts, first_value, last_ts, last_value)"
         " SELECT tenant_id, metric_id, bucket, n, min, max, sum::numeric, sumsq::numeric, first_ts, first_value,"
         " last_ts, last_value FROM ep_load_rollup WHERE res = " + std::to_string(res) +
         " ORDER BY tenant_id, metric_id, bucket"
         " ON CONFLICT (tenant_id, metric_id, bucket) DO UPDATE SET n = r.n + EXCLUDED.n,"
         " min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max),"
         " sum = r.sum + EXCLUDED.sum, sumsq = r.sumsq + EXCLUDED.sumsq,"
         " first_ts = least(r.first_ts, EXCLUDED.first_ts),"
         " first_value = CASE WHEN EXCLUDED.first_ts < r.first_ts THEN EXCLUDED.first_value ELSE r.first_value END,"
         " last_ts = greatest(r.last_ts, EXCLUDED.last_ts),"
         " last_value = CASE WHEN EXCLUDED.last_ts > r.last_ts THEN EXCLUDED.last_value ELSE r.last_value END;";
}

void encode(pg::CopyBinary& enc, int res, const Partial& p) {
  enc.row(13);
  enc.int2(static_cast<std::int16_t>(res));
  enc.uuid_bytes(p.tenant.b.data());
  enc.uuid_bytes(p.metric.b.data());
  enc.timestamptz(p.bucket_us * 1000);
  enc.int8(p.n);
  enc.float8(p.min);
  enc.float8(p.max);
  enc.text(p.sum.str());
  enc.text(p.sumsq.str());
  enc.timestamptz(p.first_ts_us * 1000);
  enc.float8(p.first_value);
  enc.timestamptz(p.last_ts_us * 1000);
  enc.float8(p.last_value);
}

}  // namespace

Status write_rollups(pg::Conn& c, const Rollups& r) {
  if (r.empty()) return Status::ok();
  EP_RETURN_IF_ERROR(c.copy_start(
      "COPY ep_load_rollup (res, tenant_id, metric_id, bucket, n, min, max, sum, sumsq, first_ts, first_value,"
      " last_ts, last_value) FROM STDIN (FORMAT binary)"));
  pg::CopyBinary enc;
  enc.header();
  const std::vector<Partial>* levels[] = {&r.minute, &r.hour, &r.day};
  for (int res = 0; res < 3; ++res) {
    for (const Partial& p : *levels[res]) {
      encode(enc, res, p);
      if (enc.size() < kCopyChunk) continue;
      if (Status s = c.copy_put(enc.data()); !s) {
        c.copy_abort("client error");
        return s;
      }
      enc.clear();
    }
  }
  enc.trailer();
  if (Status s = c.copy_put(enc.data()); !s) {
    c.copy_abort("client error");
    return s;
  }
  EP_RETURN_IF_ERROR(c.copy_finish().status());
  // The stage empties at COMMIT (ON COMMIT DELETE ROWS); one write per transaction.
  return c.run(upsert_sql(0) + upsert_sql(1) + upsert_sql(2));
}

}  // namespace ep::load
