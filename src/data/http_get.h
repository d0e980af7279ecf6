// One HTTP(S) GET into a file, through libcurl when lowbit is built with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace lowbit::data {

struct HttpGetResult {
  int64_t bytes = 0;
  std::string md5;  // of the bytes written, computed as they arrive
};

// False in a build without libcurl; http_get then throws saying so.
bool http_get_supported();

// Writes the body of `url` to `path` (created or truncated), at most `max_bytes`, flushed to disk
// before returning. `progress(done, total)` is called as bytes arrive (total 0 when the server
// does not say); `cancelled()` is polled at least once a second and stops the transfer. Throws
// lowbit::Error naming the URL: an HTTP status of 400 or more, a connection closed early, too many
// bytes, a failed write; lowbit::FetchInterrupted when cancelled. Leaves `path` to the caller.
HttpGetResult http_get(const std::string& url, const std::string& path, int64_t max_bytes,
                       const std::function<void(int64_t, int64_t)>& progress,
                       const std::function<bool()>& cancelled);

}  // namespace lowbit::data
