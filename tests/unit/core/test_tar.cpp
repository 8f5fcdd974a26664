// The ustar writer: header fields, checksum, padding, refusals.
#include <gtest/gtest.h>

#include <vector>

#include "core/tar.hpp"

namespace mw {
namespace {

std::uint64_t octal(const std::string& archive, std::size_t offset, std::size_t width) {
  return std::stoull(archive.substr(offset, width), nullptr, 8);
}

TEST(Ustar, HeadersContentPaddingAndTheEnd) {
  const std::vector<TarEntry> entries{{TarEntry::Kind::directory, "tmp", 01777, ""},
                                      {TarEntry::Kind::file, "memwarden-alloc", 0755, std::string(700, 'x')}};
  const auto tar = ustar_archive(entries);
  ASSERT_TRUE(tar.has_value()) << tar.error().line();
  ASSERT_EQ(tar->size(), 512U + 512U + 1024U + 1024U) << "two headers, 700 bytes in two blocks, two zero blocks";
  EXPECT_EQ(tar->substr(0, 4), std::string("tmp/\0", 5).substr(0, 4));
  EXPECT_EQ((*tar)[156], '5');
  EXPECT_EQ(octal(*tar, 100, 7), 01777U);
  const std::size_t file = 512;
  EXPECT_EQ(tar->substr(file, 15), "memwarden-alloc");
  EXPECT_EQ((*tar)[file + 156], '0');
  EXPECT_EQ(octal(*tar, file + 124, 11), 700U);
  EXPECT_EQ(tar->substr(file + 257, 5), "ustar");
  // The checksum: the header's bytes with the checksum field as spaces.
  std::string header = tar->substr(file, 512);
  const auto stored = octal(header, 148, 6);
  std::fill(header.begin() + 148, header.begin() + 156, ' ');
  std::uint64_t sum = 0;
  for (const char c : header) {
    sum += static_cast<unsigned char>(c);
  }
  EXPECT_EQ(stored, sum);
  EXPECT_EQ(tar->substr(1024, 700), std::string(700, 'x'));
  EXPECT_EQ(tar->substr(1024 + 700), std::string(324 + 1024, '\0'));
}

TEST(Ustar, SameInputSameBytes) {
  const std::vector<TarEntry> entries{{TarEntry::Kind::file, "a", 0644, "1"}};
  EXPECT_EQ(ustar_archive(entries).value(), ustar_archive(entries).value());
}

TEST(Ustar, PathsThatCouldLeaveTheRootAreRefused) {
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b"}) {
    const std::vector<TarEntry> entries{{TarEntry::Kind::file, bad, 0644, "x"}};
    EXPECT_FALSE(ustar_archive(entries).has_value()) << bad;
  }
  const std::vector<TarEntry> long_name{{TarEntry::Kind::file, std::string(101, 'a'), 0644, ""}};
  EXPECT_FALSE(ustar_archive(long_name).has_value());
}

}  // namespace
}  // namespace mw
