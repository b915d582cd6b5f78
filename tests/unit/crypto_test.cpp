#include "ep/crypto.h"
#include "ep/keys.h"

#include <gtest/gtest.h>

#include <set>

using namespace ep;

TEST(Crypto, Sha256KnownVector) {
  EXPECT_EQ(crypto::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(crypto::hex(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, HmacSha256StaysRightWhenTheKeyChangesAndRepeats) {
  // Contexts are reused per thread: a repeated key, a new key and the old one again.
  const std::string k1(20, '\x0b');
  const char* want1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";  // RFC 4231 case 1
  const char* want2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(crypto::hex(crypto::hmac_sha256(k1, "Hi There")), want1);
    EXPECT_EQ(crypto::hex(crypto::hmac_sha256(k1, "Hi There")), want1);
    EXPECT_EQ(crypto::hex(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")), want2);
  }
  EXPECT_EQ(crypto::hex(crypto::sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::hex(crypto::sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, Base64RoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto e = crypto::base64(s);
    auto d = crypto::unbase64(e);
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(crypto::base64(std::string("foobar")), "Zm9vYmFy");
  EXPECT_FALSE(crypto::unbase64("abc"));
}

TEST(Crypto, EqualCtComparesContentAndLength) {
  EXPECT_TRUE(crypto::equal_ct("abc", "abc"));
  EXPECT_FALSE(crypto::equal_ct("abc", "abd"));
  EXPECT_FALSE(crypto::equal_ct("abc", "abcd"));
}

TEST(Uuid, V7HasVersionVariantAndIsMonotonic) {
  std::string prev;
  for (int i = 0; i < 2000; ++i) {
    auto u = crypto::uuid_v7_at(1700000000000);
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '7');
    EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
    EXPECT_GT(u, prev);
    prev = u;
  }
}

TEST(Keys, GeneratedKeyHasShapeAndVerifies) {
  auto k = keys::generate_key();
  auto p = keys::parse_key(k);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->prefix.size(), keys::kPrefixLen);
  EXPECT_EQ(p->secret.size(), keys::kSecretLen);
  auto h = keys::hash_key("pepper", k);
  EXPECT_TRUE(keys::verify_key("pepper", k, h));
  EXPECT_FALSE(keys::verify_key("other", k, h));
  EXPECT_FALSE(keys::parse_key("ep_short_x"));
  EXPECT_FALSE(keys::parse_key("xx_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}

TEST(Keys, RandomBase62IsFromAlphabet) {
  std::set<char> seen;
  for (char c : crypto::random_base62(4000)) seen.insert(c);
  EXPECT_EQ(seen.size(), 62u);
}
