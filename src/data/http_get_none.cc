// http_get in a build without libcurl (CMake found none): fetch_dataset tells the user.
#include "data/http_get.h"
#include "lowbit/error.h"

namespace lowbit::data {

bool http_get_supported() { return false; }

HttpGetResult http_get(const std::string& url, const std::string&, int64_t,
                       const std::function<void(int64_t, int64_t)>&, const std::function<bool()>&) {
  throw Error(url + ": lowbit was built without libcurl, so it cannot download");
}

}  // namespace lowbit::data
