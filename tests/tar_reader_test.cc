// TarReader on hand-made archives: GNU and POSIX headers, long names, pax records, and every way
// an archive can be broken (cut short, bad checksum, bad size field, corrupt gzip data).
#include <gtest/gtest.h>

#include "data/tar_reader.h"
#include "data_fixtures.h"
#include "lowbit/error.h"
#include "tar_fixtures.h"

namespace lowbit {
namespace {

using namespace testing_tar;
using testing_data::fresh_dir;
using testing_data::write_file;

struct Read {
  std::string name;
  int64_t size;
  char type;
  std::string data;
};

// Every member with its data, or the error's message as the last entry's name ("error: ...").
std::vector<Read> read_all(const std::string& path) {
  std::vector<Read> out;
  try {
    data::TarReader tar(path);
    while (auto member = tar.next()) {
      std::string data(member->size, '\0');
      tar.read(data.data(), member->size);
      out.push_back({member->name, member->size, member->type, data});
    }
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    out.push_back({"error: " + message, 0, 0, ""});
  }
  return out;
}

std::string error_of(const std::string& path) {
  const std::vector<Read> members = read_all(path);
  if (members.empty() || members.back().name.rfind("error: ", 0) != 0) {
    ADD_FAILURE() << path << ": no error";
    return "";
  }
  return members.back().name.substr(7);
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Members of sizes around the 512-byte block, a folder, and a POSIX header with a prefix.
Bytes sample_archive() {
  return tar_bytes([](TarWriter& tar) {
    tar.add("top/", 0, bytes_of({}), '5');
    for (int size : {0, 1, 511, 512, 513}) {
      Bytes data(size);
      for (int i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 13 + size);
      tar.add("top/f" + std::to_string(size), data);
    }
    tar.raw(header("deep.bin", 3, '0', Format::posix, "top/sub"));
    tar.data(3, bytes_of(text("xyz")));
    tar.add("./top/dotted", text("."));
    tar.end();
  });
}

class TarReaderTest : public ::testing::TestWithParam<bool> {};  // gzipped or raw

TEST_P(TarReaderTest, ReadsEveryMemberAndItsData) {
  const std::string path = fresh_dir() + "/a.tar" + (GetParam() ? ".gz" : "");
  write_file(path, sample_archive(), GetParam());
  const std::vector<Read> members = read_all(path);
  ASSERT_EQ(members.size(), 8u) << members.back().name;
  EXPECT_EQ(members[0].name, "top/");
  EXPECT_EQ(members[0].type, '5');
  int at = 1;
  for (int size : {0, 1, 511, 512, 513}) {
    const Read& m = members[at++];
    EXPECT_EQ(m.name, "top/f" + std::to_string(size));
    ASSERT_EQ(m.size, size);
    for (int i = 0; i < size; ++i) ASSERT_EQ(static_cast<uint8_t>(m.data[i]), static_cast<uint8_t>(i * 13 + size));
  }
  EXPECT_EQ(members[6].name, "top/sub/deep.bin");  // POSIX prefix field joined
  EXPECT_EQ(members[6].data, "xyz");
  EXPECT_EQ(members[7].name, "top/dotted");  // "./" dropped
}

// Members left unread or half read are skipped to the next header.
TEST_P(TarReaderTest, SkipsWhatIsNotRead) {
  const std::string path = fresh_dir() + "/a.tar" + (GetParam() ? ".gz" : "");
  write_file(path, sample_archive(), GetParam());
  data::TarReader tar(path);
  std::vector<std::string> names;
  while (auto member = tar.next()) {
    names.push_back(member->name);
    if (member->size > 1) {
      char first;
      tar.read(&first, 1);
      EXPECT_EQ(tar.remaining(), member->size - 1);
    }
  }
  EXPECT_EQ(names.size(), 8u);
  EXPECT_FALSE(tar.next());
}

// Cut at many points: inside a header, inside data, at a block boundary before the end blocks.
TEST_P(TarReaderTest, TruncatedAnywhereIsAnError) {
  const std::string dir = fresh_dir();
  const Bytes whole = sample_archive();
  const size_t end_blocks = whole.size() - 10 * 512;  // TarWriter::end() writes ten zero blocks
  // Headers at 0, 512, 1024, 2048, 3072, 4096, 5632, 6656; f511's data at 2560.
  for (size_t cut : {size_t{100}, size_t{512}, size_t{700}, size_t{1024}, size_t{1100},
                     size_t{2600}, size_t{3000}, size_t{4000}, size_t{5000}, size_t{6000},
                     size_t{7000}, end_blocks}) {
    SCOPED_TRACE(cut);
    const std::string path = dir + "/cut" + std::to_string(cut) + ".tar" + (GetParam() ? ".gz" : "");
    write_file(path, Bytes(whole.begin(), whole.begin() + cut), GetParam());
    const std::string message = error_of(path);
    EXPECT_EQ(message.rfind(path + ": truncated: the archive ends ", 0), 0u) << message;
  }
  const auto cut_path = [&](size_t cut) {
    return dir + "/cut" + std::to_string(cut) + ".tar" + (GetParam() ? ".gz" : "");
  };
  EXPECT_EQ(error_of(cut_path(end_blocks)),
            cut_path(end_blocks) + ": truncated: the archive ends after member top/dotted without "
                                   "the zero blocks that end a tar archive");
  EXPECT_EQ(error_of(cut_path(2600)), cut_path(2600) + ": truncated: the archive ends inside member "
                                                       "top/f511 (at byte 2600 of the uncompressed archive)");
  EXPECT_EQ(error_of(cut_path(1100)),
            cut_path(1100) + ": truncated: the archive ends inside the header at byte 1024");
}

TEST_P(TarReaderTest, BadChecksumNamesTheHeader) {
  const std::string path = fresh_dir() + "/a.tar" + (GetParam() ? ".gz" : "");
  Bytes bytes = sample_archive();
  bytes[1024 + 5] ^= 1;  // the third header's name
  write_file(path, bytes, GetParam());
  const std::string message = error_of(path);
  EXPECT_EQ(message.rfind(path + ": bad tar header at byte 1024: checksum ", 0), 0u) << message;
  EXPECT_NE(message.find("does not match the header's bytes"), std::string::npos) << message;

  bytes = sample_archive();
  bytes[3] ^= 1;
  write_file(path, bytes, GetParam());
  EXPECT_EQ(error_of(path), path + ": not a tar archive: its first 512 bytes are not a valid ustar header");
}

TEST_P(TarReaderTest, HeaderFieldsAreChecked) {
  const std::string dir = fresh_dir();
  const std::string ext = GetParam() ? ".tar.gz" : ".tar";
  struct Case { std::string name; std::function<void(Bytes&)> spoil; std::string expect; };
  const std::vector<Case> cases = {
      {"size", [](Bytes& b) { std::memcpy(b.data() + 512 + 124, "0000000009x", 11); },
       ": bad tar header at byte 512: size field is not an octal number"},
      {"magic", [](Bytes& b) { std::memcpy(b.data() + 512 + 257, "ustaR", 5); },
       ": bad tar header at byte 512: no ustar magic"},
      {"checksum", [](Bytes& b) { std::memcpy(b.data() + 512 + 148, "abcdef", 6); },
       ": bad tar header at byte 512: checksum field is not an octal number"},
      {"name", [](Bytes& b) { std::memset(b.data() + 512, 0, 100); },
       ": bad tar header at byte 512: empty name"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes bytes = sample_archive();
    c.spoil(bytes);
    if (c.name != "checksum") fix_checksum(bytes, 512);
    const std::string path = dir + "/" + c.name + ext;
    write_file(path, bytes, GetParam());
    EXPECT_EQ(error_of(path), path + c.expect);
  }
}

INSTANTIATE_TEST_SUITE_P(RawAndGzip, TarReaderTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "gzip" : "raw"; });

TEST(TarReader, EmptyAndZeroFiles) {
  const std::string dir = fresh_dir();
  write_file(dir + "/empty.tar", {});
  EXPECT_EQ(error_of(dir + "/empty.tar"), dir + "/empty.tar: empty file, not a tar archive");
  write_file(dir + "/zeros.tar", Bytes(10240, 0));
  EXPECT_EQ(error_of(dir + "/zeros.tar"), dir + "/zeros.tar: not a tar archive: its first block is all zeros");
  write_file(dir + "/text.tar.gz", text(std::string(600, 'x')), true);
  EXPECT_EQ(error_of(dir + "/text.tar.gz"),
            dir + "/text.tar.gz: not a tar archive: its first 512 bytes are not a valid ustar header");
  EXPECT_EQ(error_of(dir + "/missing.tar"), dir + "/missing.tar: cannot open: No such file or directory");
}

// A cut .tar.gz fails in zlib; the error says in which member.
TEST(TarReader, CorruptGzipNamesTheMember) {
  const std::string dir = fresh_dir();
  Bytes big(300000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  write_file(dir + "/a.tar.gz", tar_bytes([&](TarWriter& tar) {
               tar.add("a", text("a"));
               tar.add("big", big);
               tar.end();
             }), true);
  Bytes gz = testing_data::Bytes(std::filesystem::file_size(dir + "/a.tar.gz"));
  std::FILE* in = std::fopen((dir + "/a.tar.gz").c_str(), "rb");
  ASSERT_EQ(std::fread(gz.data(), 1, gz.size(), in), gz.size());
  std::fclose(in);
  write_file(dir + "/cut.tar.gz", Bytes(gz.begin(), gz.begin() + gz.size() / 2));
  EXPECT_EQ(error_of(dir + "/cut.tar.gz"),
            dir + "/cut.tar.gz: member big: cannot read: corrupt gzip data (unexpected end of file)");

  // A flipped byte in the trailer's CRC: zlib finds it when it reaches the end of the stream.
  Bytes flipped = gz;
  flipped[flipped.size() - 6] ^= 0x40;
  write_file(dir + "/crc.tar.gz", flipped);
  const std::string message = error_of(dir + "/crc.tar.gz");
  EXPECT_EQ(message.rfind(dir + "/crc.tar.gz: ", 0), 0u) << message;
  EXPECT_TRUE(message.find(": cannot read: corrupt gzip data (incorrect data check)") != std::string::npos) << message;
}

TEST(TarReader, GnuLongNamesAndPaxRecords) {
  const std::string dir = fresh_dir();
  const std::string long_name = "top/" + std::string(150, 'n') + ".bin";
  const std::string pax = "30 path=top/from-pax-path.bin\n" "10 size=4\n" "20 mtime=1230768000\n";
  ASSERT_EQ(std::string("30 path=top/from-pax-path.bin\n").size(), 30u);
  const Bytes archive = tar_bytes([&](TarWriter& tar) {
    Bytes name(long_name.begin(), long_name.end());
    name.push_back(0);
    tar.add("././@LongLink", static_cast<int64_t>(name.size()), bytes_of(name), 'L');
    tar.add("short", text("long"));
    tar.add("PaxHeaders/x", static_cast<int64_t>(pax.size()), bytes_of(text(pax)), 'x');
    tar.raw(header("truncated-name", 99));  // the pax size 4 wins over 99
    tar.data(4, bytes_of(text("pax!")));
    tar.add("g", 10, bytes_of(text("10 a=bcd\n\n")), 'g');
    tar.add("plain", text("p"));
    tar.end();
  });
  write_file(dir + "/a.tar", archive);
  const std::vector<Read> members = read_all(dir + "/a.tar");
  ASSERT_EQ(members.size(), 3u) << members.back().name;
  EXPECT_EQ(members[0].name, long_name);
  EXPECT_EQ(members[0].data, "long");
  EXPECT_EQ(members[1].name, "top/from-pax-path.bin");
  EXPECT_EQ(members[1].data, "pax!");
  EXPECT_EQ(members[2].name, "plain");

  write_file(dir + "/bad-pax.tar", tar_bytes([&](TarWriter& tar) {
               tar.add("x", 12, bytes_of(text("99 path=abc\n")), 'x');
               tar.add("plain", text("p"));
               tar.end();
             }));
  EXPECT_EQ(error_of(dir + "/bad-pax.tar"),
            dir + "/bad-pax.tar: bad pax header at byte 0: record length 99 does not fit the header");
}

// Sizes come from the header: a lying one is refused or streamed past, never allocated.
TEST(TarReader, HostileSizesCostNothing) {
  const std::string dir = fresh_dir();
  write_file(dir + "/long-name.tar", tar_bytes([&](TarWriter& tar) {
               tar.raw(header("././@LongLink", int64_t{1} << 32, 'L'));
               tar.end();
             }));
  EXPECT_EQ(error_of(dir + "/long-name.tar"),
            dir + "/long-name.tar: GNU long-name member at byte 0 is 4294967296 bytes, more than "
                  "the limit of 4096");
  // 8 GiB - 1 claimed (the most 11 octal digits hold), nothing there: skipping it finds the end of the file at once.
  write_file(dir + "/huge.tar", tar_bytes([&](TarWriter& tar) {
               tar.raw(header("huge", (int64_t{1} << 33) - 1));
               tar.end();
             }), true);
  data::TarReader tar(dir + "/huge.tar");
  auto member = tar.next();
  ASSERT_TRUE(member);
  EXPECT_EQ(member->size, (int64_t{1} << 33) - 1);
  try {
    tar.next();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir + "/huge.tar: truncated: the archive ends inside member huge", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
