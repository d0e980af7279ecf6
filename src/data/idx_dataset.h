// MNIST-layout datasets: a folder of four IDX files, train/t10k images and labels, raw or .gz.
#pragma once

#include <string>
#include <vector>

#include "data/catalog.h"
#include "lowbit/dataset.h"

namespace lowbit::data {

// The four files a folder must hold, each raw or with .gz appended: train images and labels,
// then test images and labels.
inline const char* const kIdxFileNames[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// Every file name the folder may hold, raw and .gz: for "does this folder hold the dataset?".
std::vector<std::string> idx_file_candidates(const std::string& dir);

// Reads and validates the four files in `dir`. `source` goes into Dataset::source.
Dataset load_idx_dataset(const DatasetInfo& info, const std::string& dir, const std::string& source);

// Image counts from the headers only, {train, test}: fast, for `lowbit data list`.
std::pair<int64_t, int64_t> idx_dataset_counts(const std::string& dir);

}  // namespace lowbit::data
