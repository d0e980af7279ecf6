// How result lines name the images they were measured on: dataset, split and count.
#include "data/catalog.h"
#include "lowbit/dataset.h"

namespace lowbit {
namespace {

// part: "" for the whole split, else e.g. "last 5,000 of ".
std::string describe(const Dataset& dataset, Split split, const std::string& part) {
  const ImageSet& images = split == Split::train ? dataset.train : dataset.test;
  const data::DatasetInfo* info = data::find_dataset_info(dataset.name);
  const bool subset = !dataset.full && info && !info->subset_note.empty();
  // A subset's test split is lowbit's own hold-out, not a published test set.
  const std::string held_out = subset && split == Split::test && part.empty() ? "held-out " : "";
  std::string text = dataset.name + (split == Split::train ? " train, " : " test, ") + part +
                     data::with_commas(images.count) + " " + held_out + "images";
  if (subset) text += " (" + info->subset_note + ")";
  return text;
}

}  // namespace

std::string describe_split(const Dataset& dataset, Split split) {
  return describe(dataset, split, "");
}

std::string describe_split(const Dataset& dataset, Split split, SplitPart part, int64_t count) {
  return describe(dataset, split,
                  (part == SplitPart::first ? "first " : "last ") + data::with_commas(count) + " of ");
}

}  // namespace lowbit
