// CIFAR-10: the reader on small and full-size synthetic archives and folders, every kind of bad
// input, the lookup, and the official archive when LOWBIT_DATA_DIR has it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>

#include "data/cifar10.h"
#include "data/tar_reader.h"
#include "data_fixtures.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "tar_fixtures.h"
#include "util/md5.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using namespace testing_tar;
using testing_data::fresh_dir;
using testing_data::ScopedEnv;
using testing_data::write_file;

const std::string kRealDataDir = [] {
  const char* dir = std::getenv("LOWBIT_DATA_DIR");
  return std::string(dir ? dir : "");
}();

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

template <typename F>
std::string error_of(F&& load) {
  try {
    load();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no lowbit::Error";
  return "";
}

constexpr int64_t kRecords = 3;  // per file in the small archives

struct Member {
  std::string name;
  Bytes data;
  char type = '0';
};

// The six batch files of `kRecords` records, in the real archive's order, with the folder entry
// and batches.meta.txt.
std::vector<Member> small_members() {
  std::vector<Member> members = {{"cifar-10-batches-bin/", {}, '5'}};
  for (int file : {3, 4, 1, -1, 0, 2, 5}) {
    if (file < 0) members.push_back({"cifar-10-batches-bin/batches.meta.txt", {'a', '\n'}});
    else members.push_back({std::string("cifar-10-batches-bin/") + kBatchNames[file], cifar_batch(file, kRecords)});
  }
  return members;
}

void write_archive(const std::string& path, const std::vector<Member>& members, bool end = true) {
  write_file(path, tar_bytes([&](TarWriter& tar) {
               for (const Member& m : members)
                 tar.add(m.name, static_cast<int64_t>(m.data.size()), bytes_of(m.data), m.type);
               if (end) tar.end();
             }), true);
}

Member& member_named(std::vector<Member>& members, const std::string& file) {
  for (Member& m : members)
    if (m.name == "cifar-10-batches-bin/" + file) return m;
  throw std::logic_error(file);
}

void expect_small_dataset(const Dataset& d) {
  EXPECT_EQ(d.name, "cifar10");
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.class_names.at(0), "airplane");
  EXPECT_EQ(d.class_names.at(9), "truck");
  EXPECT_EQ(d.mean, (std::vector<float>{0.4914f, 0.4822f, 0.4465f}));
  EXPECT_EQ(d.std, (std::vector<float>{0.2470f, 0.2435f, 0.2616f}));
  for (const ImageSet* set : {&d.train, &d.test}) {
    EXPECT_EQ(set->channels, 3);
    EXPECT_EQ(set->height, 32);
    EXPECT_EQ(set->width, 32);
  }
  ASSERT_EQ(d.train.count, 5 * kRecords);
  ASSERT_EQ(d.test.count, kRecords);
  ASSERT_EQ(d.train.pixels.size(), size_t(5 * kRecords * 3072));
  // Training images are data_batch_1 .. 5 in that order, whatever the archive's order.
  for (int file = 0; file < 6; ++file)
    for (int64_t i = 0; i < kRecords; ++i) {
      const ImageSet& set = file < 5 ? d.train : d.test;
      const int64_t at = (file < 5 ? file * kRecords : 0) + i;
      ASSERT_EQ(set.labels[at], cifar_label(file, i));
      for (int64_t k = 0; k < 3072; ++k)
        ASSERT_EQ(set.pixels[at * 3072 + k], cifar_pixel(file, i, k)) << file << " " << i << " " << k;
    }
}

TEST(Cifar10, ReadsTheArchiveAsDistributed) {
  const std::string path = fresh_dir() + "/cifar-10-binary.tar.gz";
  write_archive(path, small_members());
  const Dataset d = data::load_cifar10({path, true}, "here", kRecords);
  expect_small_dataset(d);
  EXPECT_EQ(d.source, path + " (here)");
  EXPECT_EQ(data::cifar10_counts({path, true}, kRecords), std::make_pair(5 * kRecords, kRecords));
}

TEST(Cifar10, ReadsTheExtractedFolder) {
  const std::string dir = fresh_dir() + "/cifar-10-batches-bin";
  for (int file = 0; file < 6; ++file) write_file(dir + "/" + kBatchNames[file], cifar_batch(file, kRecords));
  const Dataset d = data::load_cifar10({dir, false}, "here", kRecords);
  expect_small_dataset(d);
  EXPECT_EQ(d.source, dir + " (here)");
}

// Channel c of pixel (y, x) of a record is byte 1 + c*1024 + y*32 + x: planes R, G, B, row-major,
// which normalized_images keeps as [C, H, W].
TEST(Cifar10, RecordsAreChannelPlanesAndNormalizePerChannel) {
  const std::string path = fresh_dir() + "/cifar-10-binary.tar.gz";
  std::vector<Member> members = small_members();
  Bytes& batch = member_named(members, "test_batch.bin").data;
  for (int64_t k = 0; k < 3072; ++k) batch[1 + k] = k < 1024 ? 255 : k < 2048 ? 0 : 128;
  write_archive(path, members);
  const Dataset d = data::load_cifar10({path, true}, "here", kRecords);
  const Tensor x = normalized_images(d.test, d.mean, d.std, 0, 1, false);
  ASSERT_EQ(x.shape(), (Shape{1, 3, 32, 32}));
  EXPECT_NEAR(x[0], (1.0f - 0.4914f) / 0.2470f, 1e-5);
  EXPECT_NEAR(x[1024 + 5], (0.0f - 0.4822f) / 0.2435f, 1e-5);
  EXPECT_NEAR(x[2048 + 1023], (128 / 255.0f - 0.4465f) / 0.2616f, 1e-5);
}

// Every kind of bad archive: one line naming the archive and the member.
TEST(Cifar10, BadArchivesNameTheMemberAndTheProblem) {
  const std::string dir = fresh_dir();
  struct Case {
    std::string name;
    std::function<void(std::vector<Member>&)> spoil;
    std::string expect;  // after "<archive>: "
  };
  const std::vector<Case> cases = {
      {"record size", [](auto& m) { member_named(m, "data_batch_2.bin").data.push_back(0); },
       "member cifar-10-batches-bin/data_batch_2.bin: 9,220 bytes is not a whole number of "
       "3,073-byte records (a label byte and 3,072 pixel bytes); expected 3 records of 3,073 bytes "
       "(9,219 bytes)"},
      {"record count", [](auto& m) { member_named(m, "data_batch_5.bin").data.resize(2 * kRecordBytes); },
       "member cifar-10-batches-bin/data_batch_5.bin: 2 records (6,146 bytes); expected 3 records "
       "of 3,073 bytes (9,219 bytes)"},
      {"label", [](auto& m) { member_named(m, "data_batch_3.bin").data = cifar_batch(2, kRecords, 2); },
       "member cifar-10-batches-bin/data_batch_3.bin: record 2 has label 10, not a class (expected 0..9)"},
      {"label 255", [](auto& m) { member_named(m, "test_batch.bin").data[0] = 255; },
       "member cifar-10-batches-bin/test_batch.bin: record 0 has label 255, not a class (expected 0..9)"},
      {"missing test", [](auto& m) { m.pop_back(); },
       "no member cifar-10-batches-bin/test_batch.bin; a CIFAR-10 binary archive holds "
       "data_batch_1.bin .. data_batch_5.bin and test_batch.bin in cifar-10-batches-bin/"},
      {"missing train", [](auto& m) { m.erase(m.begin() + 5); },
       "no member cifar-10-batches-bin/data_batch_1.bin; "},
      {"outside", [](auto& m) { m.push_back({"data_batch_1.bin", cifar_batch(0, kRecords)}); },
       "member data_batch_1.bin is not in cifar-10-batches-bin/, so this is not the official "
       "CIFAR-10 binary archive (all its files are in cifar-10-batches-bin/)"},
      {"twice", [](auto& m) { m.push_back(m[1]); },
       "member cifar-10-batches-bin/data_batch_4.bin: appears twice in the archive"},
      {"symlink", [](auto& m) { member_named(m, "data_batch_1.bin") = {"cifar-10-batches-bin/data_batch_1.bin", {}, '2'}; },
       "member cifar-10-batches-bin/data_batch_1.bin: not a regular file (tar type '2')"},
      {"dot dot", [](auto& m) { m.insert(m.begin() + 1, {"cifar-10-batches-bin/../x", {}}); },
       "member cifar-10-batches-bin/../x: a name with '..' in it"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Member> members = small_members();
    c.spoil(members);
    const std::string path = dir + "/" + c.name + ".tar.gz";
    write_archive(path, members);
    const std::string message = error_of([&] { data::load_cifar10({path, true}, "here", kRecords); });
    EXPECT_EQ(message.rfind(path + ": " + c.expect, 0), 0u) << message;
  }
}

// Members the reader does not need (readme.html, files from another tar) are passed over.
TEST(Cifar10, OtherFilesInTheFolderAreIgnored) {
  const std::string path = fresh_dir() + "/cifar-10-binary.tar.gz";
  std::vector<Member> members = small_members();
  members.insert(members.begin() + 2, {"cifar-10-batches-bin/readme.html", {'<', 'p', '>'}});
  members.push_back({"cifar-10-batches-bin/._data_batch_1.bin", {1, 2, 3}});
  write_archive(path, members);
  expect_small_dataset(data::load_cifar10({path, true}, "here", kRecords));
}

TEST(Cifar10, TruncatedAndCorruptArchives) {
  const std::string dir = fresh_dir();
  const std::string good = dir + "/good.tar.gz";
  write_archive(good, small_members());
  std::ifstream in(good, std::ios::binary);
  const Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (double fraction : {0.05, 0.3, 0.6, 0.95}) {
    SCOPED_TRACE(fraction);
    const std::string path = dir + "/cut.tar.gz";
    write_file(path, Bytes(gz.begin(), gz.begin() + static_cast<size_t>(gz.size() * fraction)));
    const std::string message = error_of([&] { data::load_cifar10({path, true}, "here", kRecords); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_TRUE(contains(message, "corrupt gzip data") || contains(message, "truncated")) << message;
  }
  // The tar cut short inside a member, then gzipped whole.
  write_archive(dir + "/short.tar.gz", small_members(), false);
  EXPECT_TRUE(contains(error_of([&] { data::load_cifar10({dir + "/short.tar.gz", true}, "here", kRecords); }),
                       "truncated: the archive ends after member cifar-10-batches-bin/test_batch.bin"));
  // Bytes flipped in the compressed stream.
  Bytes flipped = gz;
  for (size_t i = gz.size() / 3; i < gz.size() / 3 + 16; ++i) flipped[i] ^= 0x5a;
  write_file(dir + "/flipped.tar.gz", flipped);
  const std::string message = error_of([&] { data::load_cifar10({dir + "/flipped.tar.gz", true}, "here", kRecords); });
  EXPECT_EQ(message.rfind(dir + "/flipped.tar.gz: ", 0), 0u) << message;
  // Not an archive at all.
  write_file(dir + "/text.tar.gz", Bytes(2000, 'x'), true);
  EXPECT_EQ(error_of([&] { data::load_cifar10({dir + "/text.tar.gz", true}, "here", kRecords); }),
            dir + "/text.tar.gz: not a tar archive: its first 512 bytes are not a valid ustar header");
}

TEST(Cifar10, BadFolderFilesAreNamed) {
  const std::string root = fresh_dir();
  const std::string dir = root + "/cifar10/cifar-10-batches-bin";
  const auto write_good = [&] {
    for (int file = 0; file < 6; ++file) write_file(dir + "/" + kBatchNames[file], cifar_batch(file, kRecords));
  };
  const auto load = [&] { data::load_cifar10({dir, false}, "here", kRecords); };
  write_good();
  write_file(dir + "/data_batch_2.bin", Bytes(kRecordBytes * 3 - 1));
  EXPECT_EQ(error_of(load), dir + "/data_batch_2.bin: 9,218 bytes is not a whole number of 3,073-byte "
                                  "records (a label byte and 3,072 pixel bytes); expected 3 records of "
                                  "3,073 bytes (9,219 bytes)");
  write_good();
  write_file(dir + "/data_batch_4.bin", cifar_batch(3, kRecords, 1));
  EXPECT_EQ(error_of(load), dir + "/data_batch_4.bin: record 1 has label 10, not a class (expected 0..9)");
  write_good();
  fs::remove(dir + "/test_batch.bin");
  EXPECT_EQ(error_of(load), dir + "/test_batch.bin: missing; " + dir + " holds other CIFAR-10 files, so "
                                  "it must hold all six: data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
  // The archive beside a half-extracted folder is not read instead; the error says so.
  write_file(root + "/cifar10/cifar-10-binary.tar.gz", {1});
  EXPECT_TRUE(contains(error_of(load), "; the archive " + root + "/cifar10/cifar-10-binary.tar.gz is "
                                       "not read while the extracted folder beside it exists"));
  fs::create_directories(dir + "/test_batch.bin");
  EXPECT_EQ(error_of(load), dir + "/test_batch.bin: cannot open: Is a directory");
}

// The lookup, with full-size files: sparse zero-filled .bin files and a zero-pixel archive.
class Cifar10Lookup : public ::testing::Test {
 protected:
  // Built once and kept: ctest runs each test in its own process, some at the same time, so it
  // is written under a name of this process's own and renamed into place whole.
  static void SetUpTestSuite() {
    archive_ = std::string(LOWBIT_TEST_TMP) + "/Cifar10Lookup.zero-archive.tar.gz";
    if (fs::exists(archive_)) return;
    const std::string temp = archive_ + "." + std::to_string(getpid());
    write_zero_cifar_archive(temp);
    fs::rename(temp, archive_);
  }
  void put_archive(const std::string& dir) {
    fs::create_directories(dir);
    fs::copy_file(archive_, dir + "/cifar-10-binary.tar.gz", fs::copy_options::overwrite_existing);
  }
  static inline std::string archive_;
  std::string root_ = fresh_dir();
  ScopedEnv home_{"HOME", root_ + "/home"};
  ScopedEnv xdg_{"XDG_CACHE_HOME", std::nullopt};
  ScopedEnv data_{"LOWBIT_DATA_DIR", std::nullopt};
  ScopedEnv system_{"LOWBIT_SYSTEM_DATA_ROOT", root_ + "/system"};
};

TEST_F(Cifar10Lookup, EveryLayoutOfANamedFolder) {
  const std::string d = root_ + "/d";
  struct Case { std::string setup_dir, data_dir, source; bool archive; };
  const std::vector<Case> cases = {
      {d + "/cifar10", d, d + "/cifar10/cifar-10-binary.tar.gz (--data-dir)", true},
      {d + "/cifar10", d, d + "/cifar10 (--data-dir)", false},
      {d + "/cifar10/cifar-10-batches-bin", d, d + "/cifar10/cifar-10-batches-bin (--data-dir)", false},
      {d + "/cifar-10-batches-bin", d, d + "/cifar-10-batches-bin (--data-dir)", false},
      {d + "/mine", d + "/mine", d + "/mine/cifar-10-binary.tar.gz (--data-dir, the folder itself)", true},
      {d + "/mine", d + "/mine", d + "/mine (--data-dir, the folder itself)", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    fs::remove_all(d);
    if (c.archive) put_archive(c.setup_dir);
    else write_sparse_cifar_folder(c.setup_dir);
    const Dataset dataset = load_dataset("cifar10", {c.data_dir});
    EXPECT_EQ(dataset.source, c.source);
    EXPECT_EQ(dataset.train.count, 50000);
    EXPECT_EQ(dataset.test.count, 10000);
    EXPECT_TRUE(dataset.full);
    EXPECT_EQ(describe_split(dataset, Split::test), "cifar10 test, 10,000 images");
    EXPECT_EQ(describe_split(dataset, Split::train), "cifar10 train, 50,000 images");
  }
}

TEST_F(Cifar10Lookup, ExtractedFilesBeatTheArchiveBesideThem) {
  put_archive(root_ + "/d/cifar10");
  write_sparse_cifar_folder(root_ + "/d/cifar10/cifar-10-batches-bin");
  EXPECT_EQ(load_dataset("cifar10", {root_ + "/d"}).source,
            root_ + "/d/cifar10/cifar-10-batches-bin (--data-dir)");
}

TEST_F(Cifar10Lookup, TwoCopiesInANamedFolderAreAnError) {
  write_sparse_cifar_folder(root_ + "/d/cifar10/cifar-10-batches-bin");
  write_sparse_cifar_folder(root_ + "/d/cifar-10-batches-bin");
  EXPECT_EQ(error_of([&] { load_dataset("cifar10", {root_ + "/d"}); }),
            "--data-dir " + root_ + "/d: both " + root_ + "/d/cifar10/cifar-10-batches-bin and " +
                root_ + "/d/cifar-10-batches-bin hold cifar10 files; remove one, or name the one you mean");
}

TEST_F(Cifar10Lookup, NotThereSaysWhatIsExpectedAndHowToFix) {
  fs::create_directories(root_ + "/empty");
  std::string message = error_of([&] { load_dataset("cifar10", {root_ + "/empty"}); });
  EXPECT_EQ(message.rfind("--data-dir " + root_ + "/empty: no cifar10 there; expected " + root_ +
                              "/empty/cifar10/ holding cifar-10-binary.tar.gz or the extracted "
                              "data_batch_1.bin .. data_batch_5.bin and test_batch.bin",
                          0),
            0u)
      << message;
  EXPECT_TRUE(contains(message, "; the folder is empty")) << message;
  message = error_of([&] { load_dataset("cifar10", {}); });
  EXPECT_EQ(message.rfind("cifar10: not found (looked in: " + root_ + "/home/.cache/lowbit/data/cifar10 (user cache), ", 0), 0u) << message;
  EXPECT_TRUE(contains(message, "lowbit data fetch cifar10")) << message;
  // A folder with MNIST only says so.
  testing_data::write_idx_dataset(root_ + "/m/mnist", 3, 1);
  EXPECT_TRUE(contains(error_of([&] { load_dataset("cifar10", {root_ + "/m"}); }), "; it holds mnist"));
  // And a folder with CIFAR-10 asked for MNIST says it holds cifar10.
  put_archive(root_ + "/c/cifar10");
  EXPECT_TRUE(contains(error_of([&] { load_dataset("mnist", {root_ + "/c"}); }), "; it holds cifar10"));
}

TEST_F(Cifar10Lookup, TheCacheIsTheDefaultAndListShowsIt) {
  put_archive(root_ + "/home/.cache/lowbit/data/cifar10");
  const std::string archive = root_ + "/home/.cache/lowbit/data/cifar10/cifar-10-binary.tar.gz";
  EXPECT_EQ(load_dataset("cifar10", {}).source, archive + " (user cache)");
  const std::vector<DatasetStatus> rows = list_datasets({});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].name, "cifar10");
  EXPECT_TRUE(rows[3].found);
  EXPECT_TRUE(rows[3].full);
  EXPECT_EQ(rows[3].train_count, 50000);
  EXPECT_EQ(rows[3].test_count, 10000);
  EXPECT_EQ(rows[3].location, archive + " (user cache)");
}

TEST_F(Cifar10Lookup, FullSizeBadArchives) {
  const std::string dir = root_ + "/d/cifar10";
  fs::create_directories(dir);
  const std::string path = dir + "/cifar-10-binary.tar.gz";
  write_zero_cifar_archive(path, {.bad_file = 2, .bad_label_at = 9999});
  EXPECT_EQ(error_of([&] { load_dataset("cifar10", {root_ + "/d"}); }),
            path + ": member cifar-10-batches-bin/data_batch_3.bin: record 9999 has label 10, not a class (expected 0..9)");
  write_zero_cifar_archive(path, {.wrong_size_file = 0});
  EXPECT_EQ(error_of([&] { load_dataset("cifar10", {root_ + "/d"}); }),
            path + ": member cifar-10-batches-bin/data_batch_1.bin: 30,730,001 bytes is not a whole number of "
                   "3,073-byte records (a label byte and 3,072 pixel bytes); expected 10,000 records of "
                   "3,073 bytes (30,730,000 bytes)");
  write_zero_cifar_archive(path, {.skip = 5});
  EXPECT_TRUE(contains(error_of([&] { load_dataset("cifar10", {root_ + "/d"}); }),
                       path + ": no member cifar-10-batches-bin/test_batch.bin; "));
  // A count that is not 10,000, in a folder.
  write_sparse_cifar_folder(root_ + "/f/cifar-10-batches-bin");
  fs::resize_file(root_ + "/f/cifar-10-batches-bin/data_batch_5.bin", 9999 * kRecordBytes);
  EXPECT_EQ(error_of([&] { load_dataset("cifar10", {root_ + "/f"}); }),
            root_ + "/f/cifar-10-batches-bin/data_batch_5.bin: 9,999 records (30,726,927 bytes); expected "
                    "10,000 records of 3,073 bytes (30,730,000 bytes)");
}

// The official archive, when this machine has it.

// MD5s of the members of the official archive (docs/data.md).
const std::map<std::string, std::string> kOfficialMd5 = {
    {"data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"},
    {"data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"},
    {"data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"},
    {"data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"},
    {"data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"},
    {"test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"},
};

std::string real_archive() {
  if (kRealDataDir.empty()) return "";
  const std::string path = kRealDataDir + "/cifar10/cifar-10-binary.tar.gz";
  return fs::exists(path) ? path : "";
}

TEST(RealData, Cifar10MembersHaveTheOfficialMd5s) {
  const std::string archive = real_archive();
  if (archive.empty()) GTEST_SKIP() << "LOWBIT_DATA_DIR/cifar10/cifar-10-binary.tar.gz is not there";
  data::TarReader tar(archive);
  std::map<std::string, std::string> md5s;
  std::string meta;
  std::vector<char> buffer(1 << 20);
  while (auto member = tar.next()) {
    Md5 md5;
    std::string content;
    for (int64_t left = member->size; left > 0;) {
      const int64_t n = std::min<int64_t>(left, buffer.size());
      tar.read(buffer.data(), n);
      md5.update(buffer.data(), n);
      if (member->size < 4096) content.append(buffer.data(), n);
      left -= n;
    }
    const std::string name = member->name.substr(member->name.find('/') + 1);
    if (member->is_regular()) md5s[name] = md5.hex_digest();
    if (name == "batches.meta.txt") meta = content;
  }
  for (const auto& [name, md5] : kOfficialMd5) EXPECT_EQ(md5s[name], md5) << name;
  while (!meta.empty() && meta.back() == '\n') meta.pop_back();
  EXPECT_EQ(meta, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck");
}

TEST(RealData, Cifar10FromTheOfficialArchive) {
  const std::string archive = real_archive();
  if (archive.empty()) GTEST_SKIP() << "LOWBIT_DATA_DIR/cifar10/cifar-10-binary.tar.gz is not there";
  const Dataset d = load_dataset("cifar10", {kRealDataDir});
  EXPECT_EQ(d.source, archive + " (--data-dir)");
  ASSERT_EQ(d.train.count, 50000);
  ASSERT_EQ(d.test.count, 10000);
  EXPECT_EQ(d.train.image_size(), 3072);
  // 5,000 training and 1,000 test images of each class.
  std::vector<int> train_counts(10), test_counts(10);
  for (uint8_t label : d.train.labels) ++train_counts[label];
  for (uint8_t label : d.test.labels) ++test_counts[label];
  EXPECT_EQ(train_counts, std::vector<int>(10, 5000));
  EXPECT_EQ(test_counts, std::vector<int>(10, 1000));
  EXPECT_EQ(d.train.labels[0], 6);  // the first training image is a frog
  EXPECT_EQ(d.test.labels[0], 3);   // the first test image a cat
  // The normalization constants are the training pixels' per-channel mean and std.
  for (int c = 0; c < 3; ++c) {
    double sum = 0, squares = 0;
    for (int64_t i = 0; i < d.train.count; ++i)
      for (int64_t k = 0; k < 1024; ++k) {
        const double v = d.train.pixels[i * 3072 + c * 1024 + k] / 255.0;
        sum += v, squares += v * v;
      }
    const double n = 50000.0 * 1024, mean = sum / n;
    EXPECT_NEAR(mean, d.mean[c], 5e-5) << "channel " << c;
    EXPECT_NEAR(std::sqrt(squares / n - mean * mean), d.std[c], 5e-5) << "channel " << c;
  }
}

// The extracted folder gives the same images as the archive.
TEST(RealData, Cifar10ExtractedFolderEqualsTheArchive) {
  const std::string archive = real_archive();
  if (archive.empty()) GTEST_SKIP() << "LOWBIT_DATA_DIR/cifar10/cifar-10-binary.tar.gz is not there";
  const std::string dir = fresh_dir() + "/cifar-10-batches-bin";
  fs::create_directories(dir);
  data::TarReader tar(archive);
  std::vector<char> buffer(1 << 20);
  while (auto member = tar.next()) {
    if (!member->is_regular()) continue;
    std::ofstream out(dir + "/" + member->name.substr(member->name.find('/') + 1), std::ios::binary);
    for (int64_t left = member->size; left > 0;) {
      const int64_t n = std::min<int64_t>(left, buffer.size());
      tar.read(buffer.data(), n);
      out.write(buffer.data(), n);
      left -= n;
    }
  }
  const Dataset from_folder = load_dataset("cifar10", {dir});
  EXPECT_EQ(from_folder.source, dir + " (--data-dir, the folder itself)");
  const Dataset from_archive = data::load_cifar10({archive, true}, "here");
  EXPECT_TRUE(from_folder.train.pixels == from_archive.train.pixels);
  EXPECT_TRUE(from_folder.train.labels == from_archive.train.labels);
  EXPECT_TRUE(from_folder.test.pixels == from_archive.test.pixels);
  EXPECT_TRUE(from_folder.test.labels == from_archive.test.labels);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lowbit
