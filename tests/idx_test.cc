// IDX reader tests: round trips, and every kind of broken or hostile file fails with one line
// naming the file, without allocating what a lying header asks for.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

#include "data_fixtures.h"
#include "lowbit/dataset.h"
#include "lowbit/error.h"
#include "lowbit/idx.h"

// GCC cannot see that these new and delete replacements pair malloc with free on purpose.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Records the largest single allocation while `g_watch` is on, to prove readers do not trust
// header sizes.
static std::atomic<bool> g_watch{false};
static std::atomic<size_t> g_largest{0};
void* operator new(size_t size) {
  if (g_watch && size > g_largest) g_largest = size;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace lowbit {
namespace {

using namespace testing_data;

// Runs `read` and returns the lowbit::Error message; fails the test if none is thrown.
template <typename Read>
std::string error_of(Read read) {
  try {
    read();
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "no lowbit::Error thrown";
  return "";
}

Bytes pixels_of(int count, int size) {
  Bytes pixels;
  for (int i = 0; i < count; ++i)
    for (int k = 0; k < size; ++k) pixels.push_back(fake_pixel(i, k));
  return pixels;
}

class IdxTest : public ::testing::TestWithParam<bool> {  // parameter: gzipped
 protected:
  bool gzip() const { return GetParam(); }
  std::string path(const std::string& name) { return dir_ + "/" + name + (gzip() ? ".gz" : ""); }
  std::string dir_ = fresh_dir(GetParam() ? ".gz" : ".raw");
};

TEST_P(IdxTest, ImagesRoundTrip) {
  Bytes pixels = pixels_of(3, 6);
  write_file(path("images"), idx_images(3, 2, 3, pixels), gzip());
  IdxImages images = read_idx_images(path("images"));
  EXPECT_EQ(images.count, 3);
  EXPECT_EQ(images.rows, 2);
  EXPECT_EQ(images.cols, 3);
  EXPECT_EQ(images.pixels, pixels);
}

TEST_P(IdxTest, LabelsRoundTrip) {
  Bytes labels = {5, 0, 4, 1, 9};
  write_file(path("labels"), idx_labels(labels), gzip());
  EXPECT_EQ(read_idx_labels(path("labels")), labels);
  IdxHeader header = read_idx_header(path("labels"), kIdxLabelsMagic);
  EXPECT_EQ(header.count, 5);
}

TEST_P(IdxTest, LargerThanOneChunkRoundTrips) {
  Bytes pixels = pixels_of(3000, 28 * 28);  // 2.35 MB: several read chunks
  write_file(path("images"), idx_images(3000, 28, 28, pixels), gzip());
  EXPECT_EQ(read_idx_images(path("images")).pixels, pixels);
}

TEST_P(IdxTest, TruncatedImagesSayWhatTheHeaderPromised) {
  Bytes bytes = idx_images(3, 2, 3, pixels_of(3, 6));
  bytes.resize(bytes.size() - 4);
  write_file(path("images"), bytes, gzip());
  EXPECT_EQ(error_of([&] { read_idx_images(path("images")); }),
            path("images") + ": truncated: header says 3 images of 2x3 (18 bytes) but file has 14 "
                             "bytes after the header");
}

TEST_P(IdxTest, TruncatedLabels) {
  Bytes bytes = idx_labels({1, 2, 3});
  bytes.pop_back();
  write_file(path("labels"), bytes, gzip());
  std::string message = error_of([&] { read_idx_labels(path("labels")); });
  EXPECT_NE(message.find(path("labels") + ": truncated"), std::string::npos) << message;
}

TEST_P(IdxTest, HeaderCutShort) {
  Bytes bytes = idx_images(3, 2, 3, {});
  bytes.resize(10);
  write_file(path("images"), bytes, gzip());
  std::string message = error_of([&] { read_idx_images(path("images")); });
  EXPECT_NE(message.find(path("images") + ": truncated: 10 bytes"), std::string::npos) << message;
}

TEST_P(IdxTest, EmptyFile) {
  write_file(path("images"), {}, gzip());
  EXPECT_EQ(error_of([&] { read_idx_images(path("images")); }),
            path("images") + ": empty file (expected an IDX image file)");
}

TEST_P(IdxTest, WrongMagicNamesWhatItFound) {
  write_file(path("labels"), idx_labels({1, 2}), gzip());
  std::string message = error_of([&] { read_idx_images(path("labels")); });
  EXPECT_NE(message.find(path("labels") + ": not an IDX image file: magic 2049, expected 2051"),
            std::string::npos) << message;
  write_file(path("junk"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'}, gzip());
  message = error_of([&] { read_idx_labels(path("junk")); });
  EXPECT_NE(message.find(path("junk") + ": not an IDX label file"), std::string::npos) << message;
}

TEST_P(IdxTest, TrailingBytesAreAnError) {
  Bytes bytes = idx_images(2, 2, 3, pixels_of(2, 6));
  bytes.push_back(42);
  write_file(path("images"), bytes, gzip());
  std::string message = error_of([&] { read_idx_images(path("images")); });
  EXPECT_NE(message.find(path("images") + ": trailing bytes"), std::string::npos) << message;
  Bytes labels = idx_labels({1, 2});
  labels.insert(labels.end(), 10000, 0);
  write_file(path("labels"), labels, gzip());
  message = error_of([&] { read_idx_labels(path("labels")); });
  EXPECT_NE(message.find(path("labels") + ": trailing bytes"), std::string::npos) << message;
}

TEST_P(IdxTest, ZeroSizedImagesAreRejected) {
  write_file(path("images"), idx_images(2, 0, 3, {}), gzip());
  std::string message = error_of([&] { read_idx_images(path("images")); });
  EXPECT_NE(message.find(path("images") + ": header says images of 0x3"), std::string::npos) << message;
}

// Headers claiming absurd sizes fail at once, and no allocation is ever larger than a read chunk.
TEST_P(IdxTest, HostileHeadersFailFastWithoutAllocating) {
  struct Case { uint32_t count, rows, cols; const char* expect; };
  const Case cases[] = {
      {4'000'000'000u, 28, 28, "header says 4000000000 images, more than the limit of 10000000"},
      {10, 100'000, 28, "header says images of 100000x28; each side must be 1..4096"},
      {10'000'000, 28, 28, "header says 7840000000 bytes of pixels, more than the limit"},
      // Within the limits but lying: reading must stop at the real end, not allocate 1.9 GB.
      {2'500'000, 28, 28, "truncated: header says 2500000 images of 28x28 (1960000000 bytes) but "
                          "file has 6 bytes after the header"},
  };
  for (const Case& c : cases) {
    write_file(path("images"), idx_images(c.count, c.rows, c.cols, {1, 2, 3, 4, 5, 6}), gzip());
    auto start = std::chrono::steady_clock::now();
    g_largest = 0;
    g_watch = true;
    std::string message = error_of([&] { read_idx_images(path("images")); });
    g_watch = false;
    EXPECT_NE(message.find(path("images") + ": " + c.expect), std::string::npos) << message;
    EXPECT_LE(g_largest.load(), size_t{2} << 20) << "allocated " << g_largest << " bytes for " << c.expect;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  }
  write_file(path("labels"), idx_labels({}), gzip());
  Bytes huge_labels;
  put_u32(huge_labels, 2049), put_u32(huge_labels, 4'000'000'000u);
  write_file(path("labels"), huge_labels, gzip());
  std::string message = error_of([&] { read_idx_labels(path("labels")); });
  EXPECT_NE(message.find("4000000000 labels, more than the limit"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(RawAndGzip, IdxTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "gzip" : "raw"; });

TEST(IdxFile, MissingFile) {
  std::string missing = fresh_dir() + "/nothing-here.gz";
  EXPECT_EQ(error_of([&] { read_idx_images(missing); }),
            missing + ": cannot open: No such file or directory");
}

TEST(IdxFile, DirectoryIsNotAFile) {
  std::string dir = fresh_dir();
  EXPECT_EQ(error_of([&] { read_idx_labels(dir); }), dir + ": cannot open: Is a directory");
}

TEST(IdxFile, CutGzipStreamIsAnError) {
  std::string dir = fresh_dir();
  write_file(dir + "/whole.gz", idx_images(50, 28, 28, pixels_of(50, 784)), true);
  std::ifstream in(dir + "/whole.gz", std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), {});
  gz.resize(gz.size() / 2);
  write_file(dir + "/cut.gz", gz);
  std::string message = error_of([&] { read_idx_images(dir + "/cut.gz"); });
  EXPECT_EQ(message.rfind(dir + "/cut.gz: ", 0), 0u) << message;
}

// Cross-file checks happen in the dataset loader: it names both files.
TEST(IdxDataset, ImageAndLabelCountsMustAgree) {
  std::string root = fresh_dir();
  write_idx_dataset(root + "/mnist", 5, 3);
  write_file(root + "/mnist/train-labels-idx1-ubyte.gz", idx_labels({1, 2, 3, 4}), true);
  std::string message = error_of([&] { load_dataset("mnist", {root}); });
  EXPECT_EQ(message, root + "/mnist/train-images-idx3-ubyte.gz and " + root +
                         "/mnist/train-labels-idx1-ubyte.gz: 5 images but 4 labels");
}

TEST(IdxDataset, LabelsMustBeClasses) {
  std::string root = fresh_dir();
  write_idx_dataset(root + "/mnist", 5, 3);
  write_file(root + "/mnist/t10k-labels-idx1-ubyte.gz", idx_labels({1, 10, 3}), true);
  EXPECT_EQ(error_of([&] { load_dataset("mnist", {root}); }),
            root + "/mnist/t10k-labels-idx1-ubyte.gz: label 10 at index 1 is not a class "
                   "(expected 0..9)");
}

TEST(IdxDataset, TrainAndTestShapesMustAgree) {
  std::string root = fresh_dir();
  write_idx_dataset(root + "/mnist", 2, 1);
  write_file(root + "/mnist/t10k-images-idx3-ubyte.gz", idx_images(1, 3, 2, pixels_of(1, 6)), true);
  std::string message = error_of([&] { load_dataset("mnist", {root}); });
  EXPECT_NE(message.find("train images are 2x3 but test images are 3x2"), std::string::npos) << message;
  EXPECT_NE(message.find(root + "/mnist/t10k-images-idx3-ubyte.gz"), std::string::npos) << message;
}

TEST(IdxDataset, MissingFileInAFolderIsNamed) {
  std::string root = fresh_dir();
  write_idx_dataset(root + "/mnist", 2, 1);
  std::filesystem::remove(root + "/mnist/t10k-labels-idx1-ubyte.gz");
  std::string message = error_of([&] { load_dataset("mnist", {root}); });
  EXPECT_EQ(message.rfind(root + "/mnist/t10k-labels-idx1-ubyte.gz: missing", 0), 0u) << message;
}

TEST(IdxDataset, RawFilesLoadToo) {
  std::string root = fresh_dir();
  write_idx_dataset(root + "/mnist", 4, 2, /*gzip=*/false);
  Dataset dataset = load_dataset("mnist", {root});
  EXPECT_EQ(dataset.train.count, 4);
  EXPECT_EQ(dataset.test.count, 2);
  EXPECT_EQ(dataset.train.labels, (Bytes{0, 1, 2, 3}));
  EXPECT_EQ(dataset.test.pixels, pixels_of(2, 6));
}

}  // namespace
}  // namespace lowbit
