// `lowbit data fetch`: downloads a dataset's official files into the user cache, only when asked,
// checking each file's MD5 before it is moved into place.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lowbit/error.h"

namespace lowbit {

// One file a dataset is distributed as, where it is published and its published MD5.
struct OfficialFile {
  std::string name;  // e.g. "cifar-10-binary.tar.gz", "train-images-idx3-ubyte.gz"
  std::string md5;   // 32 lowercase hex digits
};

// The datasets `fetch_dataset` knows: "cifar10", "mnist", "fashion-mnist".
std::vector<std::string> fetchable_datasets();
// The folder URL the official files are published under, e.g. "https://www.cs.toronto.edu/~kriz/".
std::string official_url(const std::string& dataset);
std::vector<OfficialFile> official_files(const std::string& dataset);

struct FetchOptions {
  // Where the files are fetched from instead of official_url(): a folder URL (http:// or https://)
  // the file names are appended to; for a one-file dataset also the file's own URL.
  std::string url;
  // The cache root to put the dataset in (as DIR/cifar10/...); empty: the user cache
  // ($XDG_CACHE_HOME/lowbit/data or ~/.cache/lowbit/data).
  std::string cache_dir;
  // Expected MD5s replacing the official ones, by file name: for mirrors whose files differ from
  // the official bytes (another gzip wrapper, say) and for tests.
  std::map<std::string, std::string> md5;
  // Polled during the transfer; true stops it (the CLI sets it on SIGINT or SIGTERM).
  std::function<bool()> cancelled;
  bool progress = true;  // a progress bar on stderr when it is a terminal
};

struct FetchedFile {
  std::string name, path, url;  // url: where it came from; empty when it was already there
  std::string md5;              // checked against `expected_md5`
  std::string expected_md5;
  bool official_md5 = true;     // false when FetchOptions::md5 gave the expected one
  int64_t bytes = 0;
  bool downloaded = false;      // false: already in the cache with the expected MD5
  bool replaced = false;        // a file of another MD5 was there and was replaced
};

struct FetchResult {
  std::string dataset;
  std::string dir;  // the dataset's folder in the cache, e.g. ~/.cache/lowbit/data/cifar10
  std::vector<FetchedFile> files;
};

// Thrown when FetchOptions::cancelled stopped a download; like every failure, nothing is left.
class FetchInterrupted : public Error {
 public:
  using Error::Error;
};

// False when lowbit was built without libcurl: fetch_dataset then throws saying so.
bool fetch_supported();

// Puts the dataset's files into CACHE/<dataset>/: each file not already there with the expected
// MD5 is downloaded into a temporary folder CACHE/.<dataset>.part-XXXXXX, checked, and only when
// all are good renamed into place. On any failure (HTTP error, a broken connection, a wrong MD5,
// more than 1 GiB, interruption) the temporary folder and any folder this call created are
// removed, and a lowbit::Error names the URL or file and what went wrong.
FetchResult fetch_dataset(const std::string& dataset, const FetchOptions& options);

inline constexpr int64_t kFetchMaxBytes = int64_t{1} << 30;  // per file; the largest is 170 MB

}  // namespace lowbit
