// http_get through libcurl's easy interface: one transfer, body streamed to a file and hashed.
#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "data/http_get.h"
#include "lowbit/fetch.h"
#include "util/md5.h"

namespace lowbit::data {
namespace {

struct Transfer {
  std::FILE* out = nullptr;
  Md5 md5;
  int64_t bytes = 0, max_bytes = 0;
  bool too_big = false;
  int write_errno = 0;
  const std::function<void(int64_t, int64_t)>* progress = nullptr;
  const std::function<bool()>* cancelled = nullptr;
  bool was_cancelled = false;
};

size_t on_data(char* data, size_t, size_t size, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->bytes + static_cast<int64_t>(size) > t->max_bytes) {
    t->too_big = true;
    return 0;  // anything but `size` makes libcurl stop with CURLE_WRITE_ERROR
  }
  if (std::fwrite(data, 1, size, t->out) != size) {
    t->write_errno = errno;
    return 0;
  }
  t->md5.update(data, size);
  t->bytes += static_cast<int64_t>(size);
  return size;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (*t->cancelled && (*t->cancelled)()) {
    t->was_cancelled = true;
    return 1;  // non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK
  }
  if (*t->progress) (*t->progress)(now, total);
  return 0;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

bool http_get_supported() { return true; }

HttpGetResult http_get(const std::string& url, const std::string& path, int64_t max_bytes,
                       const std::function<void(int64_t, int64_t)>& progress,
                       const std::function<bool()>& cancelled) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw Error(url + ": cannot start libcurl");
  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(path.c_str(), "wb"));
  if (!out) throw Error(path + ": cannot create file: " + std::strerror(errno));

  Transfer transfer;
  transfer.out = out.get();
  transfer.max_bytes = max_bytes;
  transfer.progress = &progress;
  transfer.cancelled = &cancelled;
  char error_text[CURL_ERROR_SIZE] = "";
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85 replaced the bitmask options with these
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
#endif
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error, not a body to keep
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lowbit/0.1.0");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: signals are the caller's
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A transfer slower than 1 byte/s for a minute has stalled.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);

  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    if (transfer.was_cancelled) throw FetchInterrupted(url + ": interrupted");
    if (transfer.too_big || code == CURLE_FILESIZE_EXCEEDED)
      throw Error(url + ": more than the limit of " + std::to_string(max_bytes) + " bytes");
    if (transfer.write_errno)
      throw Error(path + ": cannot write: " + std::strerror(transfer.write_errno));
    if (code == CURLE_HTTP_RETURNED_ERROR) {
      long status = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      throw Error(url + ": the server answered HTTP " + std::to_string(status));
    }
    const std::string why = error_text[0] ? error_text : curl_easy_strerror(code);
    throw Error(url + ": download failed" +
                (transfer.bytes ? " after " + std::to_string(transfer.bytes) + " bytes" : "") + ": " + why);
  }
  // The file must be on disk before it is renamed into place.
  if (std::fflush(out.get()) != 0 || ::fsync(fileno(out.get())) != 0)
    throw Error(path + ": cannot write: " + std::strerror(errno));
  if (std::fclose(out.release()) != 0) throw Error(path + ": cannot write: " + std::strerror(errno));
  return {transfer.bytes, transfer.md5.hex_digest()};
}

}  // namespace lowbit::data
