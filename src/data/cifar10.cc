// Reads CIFAR-10's six binary batch files from the tar.gz archive or a folder, checking each
// file's size before reading it and each label as it is read.
#include "data/cifar10.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <vector>

#include "data/catalog.h"
#include "data/gz_reader.h"
#include "data/tar_reader.h"
#include "lowbit/error.h"

namespace lowbit::data {
namespace {

constexpr int kFiles = 6;
constexpr int64_t kChunkRecords = 1024;  // read 3 MB at a time

const std::string kAllSix = "data_batch_1.bin .. data_batch_5.bin and test_batch.bin";

int batch_index(const std::string& file_name) {
  for (int i = 0; i < kFiles; ++i)
    if (file_name == kCifarBatchFiles[i]) return i;
  return -1;
}

// The images as the six files arrive, in whatever order the archive holds them.
class Batches {
 public:
  // keep_pixels false: only sizes are checked (for listings), nothing is allocated.
  Batches(int64_t records_per_file, bool keep_pixels)
      : per_file_(records_per_file), keep_(keep_pixels) {
    for (ImageSet* set : {&train_, &test_}) {
      set->channels = kCifarChannels;
      set->height = set->width = kCifarSide;
    }
    train_.count = 5 * per_file_;
    test_.count = per_file_;
  }

  // Called with a file's byte size before any of it is read; `who` names it in errors.
  void check_size(const std::string& who, int64_t size) const {
    const std::string expected = with_commas(per_file_) + " records of 3,073 bytes (" +
                                 with_commas(per_file_ * kCifarRecordBytes) + " bytes)";
    if (size % kCifarRecordBytes != 0)
      throw Error(who + ": " + with_commas(size) + " bytes is not a whole number of 3,073-byte "
                  "records (a label byte and 3,072 pixel bytes); expected " + expected);
    if (size != per_file_ * kCifarRecordBytes)
      throw Error(who + ": " + with_commas(size / kCifarRecordBytes) + " records (" +
                  with_commas(size) + " bytes); expected " + expected);
  }

  // Reads file `index`'s records through `read` (exactly the bytes asked for, or throws).
  void read(int index, const std::string& who, const std::function<void(void*, int64_t)>& read) {
    if (!keep_) return;
    ImageSet& set = index < 5 ? train_ : test_;
    const int64_t first = index < 5 ? index * per_file_ : 0;
    if (set.pixels.empty()) {
      set.pixels.resize(set.count * kCifarImageBytes);
      set.labels.resize(set.count);
    }
    std::vector<uint8_t> chunk(std::min(per_file_, kChunkRecords) * kCifarRecordBytes);
    for (int64_t done = 0; done < per_file_;) {
      const int64_t records = std::min(kChunkRecords, per_file_ - done);
      read(chunk.data(), records * kCifarRecordBytes);
      for (int64_t r = 0; r < records; ++r) {
        const uint8_t* record = chunk.data() + r * kCifarRecordBytes;
        if (record[0] >= 10)
          throw Error(who + ": record " + std::to_string(done + r) + " has label " +
                      std::to_string(record[0]) + ", not a class (expected 0..9)");
        set.labels[first + done + r] = record[0];
        std::copy_n(record + 1, kCifarImageBytes, set.pixels.begin() + (first + done + r) * kCifarImageBytes);
      }
      done += records;
    }
  }

  ImageSet& train() { return train_; }
  ImageSet& test() { return test_; }

 private:
  int64_t per_file_;
  bool keep_;
  ImageSet train_, test_;
};

void read_folder(const std::string& dir, Batches& batches) {
  namespace fs = std::filesystem;
  for (int i = 0; i < kFiles; ++i) {
    const std::string path = dir + "/" + kCifarBatchFiles[i];
    std::error_code error;
    if (!fs::exists(path, error)) {
      std::string note;
      const fs::path parent = fs::path(dir).lexically_normal().parent_path();
      if (fs::path(dir).lexically_normal().filename() == kCifarFolder &&
          fs::exists(parent / kCifarArchive, error))
        note = "; the archive " + (parent / kCifarArchive).string() +
               " is not read while the extracted folder beside it exists";
      throw Error(path + ": missing; " + dir + " holds other CIFAR-10 files, so it must hold all "
                  "six: " + kAllSix + note);
    }
    GzReader reader(path);  // says why when it cannot be opened (a folder, no permission, ...)
    const int64_t size = static_cast<int64_t>(fs::file_size(path, error));
    if (error) throw Error(path + ": cannot read its size: " + error.message());
    batches.check_size(path, size);
    batches.read(i, path, [&](void* buffer, int64_t want) {
      if (reader.read(buffer, want) < want)
        throw Error(path + ": truncated while being read (it had " + std::to_string(size) + " bytes)");
    });
  }
}

void read_archive(const std::string& archive, Batches& batches) {
  const std::string folder = std::string(kCifarFolder) + "/";
  bool seen[kFiles] = {};
  TarReader tar(archive);
  while (std::optional<TarMember> member = tar.next()) {
    const std::string who = archive + ": member " + member->name;
    if (member->name.rfind(folder, 0) != 0 && member->name != kCifarFolder)
      throw Error(who + " is not in " + folder + ", so this is not the official CIFAR-10 binary "
                  "archive (all its files are in " + folder + ")");
    const std::string inside = member->name.substr(std::min(member->name.size(), folder.size()));
    if (inside == ".." || inside.rfind("../", 0) == 0 || inside.find("/../") != std::string::npos)
      throw Error(who + ": a name with '..' in it");
    const int index = batch_index(inside);
    if (index < 0) continue;  // batches.meta.txt, readme.html, the folder itself
    if (!member->is_regular())
      throw Error(who + ": not a regular file (tar type '" + std::string(1, member->type) + "')");
    if (seen[index]) throw Error(who + ": appears twice in the archive");
    seen[index] = true;
    batches.check_size(who, member->size);
    batches.read(index, who, [&](void* buffer, int64_t size) { tar.read(buffer, size); });
  }
  for (int i = 0; i < kFiles; ++i)
    if (!seen[i])
      throw Error(archive + ": no member " + folder + kCifarBatchFiles[i] + "; a CIFAR-10 binary "
                  "archive holds " + kAllSix + " in " + folder);
}

void read_all(const CifarFiles& files, Batches& batches) {
  if (files.archive) read_archive(files.path, batches);
  else read_folder(files.path, batches);
}

}  // namespace

std::optional<CifarFiles> cifar_files_in(const std::string& dir) {
  std::error_code ignored;
  const auto holds_batches = [&](const std::string& folder) {
    return std::any_of(std::begin(kCifarBatchFiles), std::end(kCifarBatchFiles), [&](const char* name) {
      return std::filesystem::exists(folder + "/" + name, ignored);
    });
  };
  if (holds_batches(dir)) return CifarFiles{dir, false};
  const std::string archive = dir + "/" + kCifarArchive;
  if (std::filesystem::exists(archive, ignored) && !holds_batches(dir + "/" + kCifarFolder))
    return CifarFiles{archive, true};
  return std::nullopt;
}

Dataset load_cifar10(const CifarFiles& files, const std::string& why, int64_t records_per_file) {
  Batches batches(records_per_file, true);
  read_all(files, batches);
  Dataset dataset;
  dataset.name = kCifar10.name;
  dataset.source = files.path + " (" + why + ")";
  dataset.full = records_per_file == kCifarRecordsPerFile;
  dataset.description = kCifar10.description;
  dataset.num_classes = static_cast<int>(kCifar10.class_names.size());
  dataset.class_names = kCifar10.class_names;
  dataset.mean = kCifar10.mean;
  dataset.std = kCifar10.std;
  dataset.train = std::move(batches.train());
  dataset.test = std::move(batches.test());
  return dataset;
}

std::pair<int64_t, int64_t> cifar10_counts(const CifarFiles& files, int64_t records_per_file) {
  Batches batches(records_per_file, false);
  read_all(files, batches);
  return {batches.train().count, batches.test().count};
}

}  // namespace lowbit::data
