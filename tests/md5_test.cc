// MD5 against RFC 1321's test suite (appendix A.5), and fed in pieces of every size.
#include <gtest/gtest.h>

#include "util/md5.h"

namespace lowbit {
namespace {

TEST(Md5, Rfc1321TestSuite) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(md5_hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  std::string digits;
  for (int i = 0; i < 8; ++i) digits += "1234567890";
  EXPECT_EQ(md5_hex(digits), "57edf4a22be3c955ac49da2e2107b67a");
}

// Lengths around the padding boundaries (55, 56, 64 bytes), split at every point.
TEST(Md5, PiecesGiveTheSameDigest) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += static_cast<char>('a' + i * 7 % 26);
  for (size_t length : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200}) {
    const std::string whole = md5_hex(text.substr(0, length));
    for (size_t split = 0; split <= length; ++split) {
      Md5 md5;
      md5.update(text.data(), split);
      md5.update(text.data() + split, length - split);
      ASSERT_EQ(md5.hex_digest(), whole) << "length " << length << " split " << split;
    }
  }
}

TEST(Md5, HexCheck) {
  EXPECT_TRUE(is_md5_hex("c32a1d4ab5d03f1284b67883e8d87530"));
  EXPECT_TRUE(is_md5_hex("C32A1D4AB5D03F1284B67883E8D87530"));
  EXPECT_FALSE(is_md5_hex("c32a1d4ab5d03f1284b67883e8d8753"));
  EXPECT_FALSE(is_md5_hex("c32a1d4ab5d03f1284b67883e8d8753g"));
  EXPECT_FALSE(is_md5_hex(""));
}

}  // namespace
}  // namespace lowbit
