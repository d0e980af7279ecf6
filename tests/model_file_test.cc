// Model files round-trip exactly and reject truncation, corruption and future versions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "lowbit/error.h"
#include "lowbit/model_file.h"
#include "util/container.h"

namespace lowbit {
namespace {

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(LOWBIT_TEST_TMP);
  return std::string(LOWBIT_TEST_TMP) + "/model_file_" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

Model trained_looking_model() {
  Model m = Model::from_description(Model::fc_nn_description({1, 4, 4}, 3));
  m.init(9);
  m.metadata = {{"dataset", "toy"}, {"mean", {0.5}}, {"std", {0.25}}};
  return m;
}

void expect_error_mentioning(const std::string& path, const std::string& words) {
  try {
    load_model(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(words), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

TEST(ModelFile, RoundTripIsExact) {
  Model m = trained_looking_model();
  const std::string path = temp_path("roundtrip.lbm");
  save_model(m, path);
  Model back = load_model(path);
  EXPECT_EQ(back.description(), m.description());
  EXPECT_EQ(back.metadata, m.metadata);
  auto a = m.parameters(), b = back.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(std::equal(a[i]->values().begin(), a[i]->values().end(), b[i]->values().begin()));
  EXPECT_EQ(model_file_kind(path), "float");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(ModelFile, RejectsTruncatedCorruptedAndFutureFiles) {
  const std::string good = temp_path("good.lbm");
  save_model(trained_looking_model(), good);
  const std::string bytes = read_bytes(good);

  const std::string truncated = temp_path("truncated.lbm");
  write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
  expect_error_mentioning(truncated, "checksum");

  const std::string tiny = temp_path("tiny.lbm");
  write_bytes(tiny, bytes.substr(0, 10));
  expect_error_mentioning(tiny, "not a lowbit model");

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  const std::string corrupted = temp_path("corrupted.lbm");
  write_bytes(corrupted, flipped);
  expect_error_mentioning(corrupted, "checksum");

  std::string magic = bytes;
  magic[0] = 'X';
  const std::string wrong_magic = temp_path("magic.lbm");
  write_bytes(wrong_magic, magic);
  expect_error_mentioning(wrong_magic, "bad magic");

  std::string future = bytes;
  future[8] = static_cast<char>(kContainerVersion + 1);  // version, little-endian
  const std::string future_path = temp_path("future.lbm");
  write_bytes(future_path, future);
  expect_error_mentioning(future_path, "newer than this lowbit");

  expect_error_mentioning(temp_path("missing.lbm"), "cannot open");
}

TEST(ModelFile, RejectsAWellFormedContainerOfTheWrongKindOrShape) {
  Container c;
  c.header = {{"kind", "float"}, {"description", Model::fc_nn_description({1, 4, 4}, 3)}};
  c.blobs.push_back(std::string(12, '\0'));  // far too few parameters
  const std::string path = temp_path("short.lbm");
  write_bytes(path, encode_container(c));
  expect_error_mentioning(path, "more than the 3");  // refused before the model is allocated

  c.header["kind"] = "quantized";
  const std::string other = temp_path("kind.lbm");
  write_bytes(other, encode_container(c));
  expect_error_mentioning(other, "not a float model");
}

}  // namespace
}  // namespace lowbit
