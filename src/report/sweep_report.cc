// sweep.json and the accuracy-against-bits chart.
#include <algorithm>
#include <map>

#include "lowbit/atomic_file.h"
#include "lowbit/plot.h"
#include "lowbit/sweep.h"

namespace lowbit {

void write_sweep_report(const SweepResult& result, const std::string& out_dir) {
  ensure_writable_dir(out_dir, "--out-dir");
  const std::string json_path = out_dir + "/sweep.json";

  LinePlot plot;
  const bool fc_nn = result.model.empty() || result.model == "fc_nn";
  plot.title = (fc_nn ? std::string("FC_NN") : result.model) + " on " + result.dataset + ": test accuracy by bit width";
  plot.x_label = "bits (weights and activations)";
  plot.y_label = "test accuracy (%), lowbit's integer engine";
  plot.x_min = 0.5;
  plot.x_max = 8.5;
  plot.y_min = 0;
  plot.y_max = 100;
  for (int b = 1; b <= 8; ++b) plot.x_ticks.push_back(b);

  std::map<std::string, PlotSeries> by_method;
  std::vector<std::string> order;
  for (const SweepRow& row : result.results) {
    if (!by_method.count(row.method)) order.push_back(row.method);
    PlotSeries& s = by_method[row.method];
    s.label = "lowbit " + row.method;
    s.x.push_back(row.weight_bits);
    s.y.push_back(100 * row.accuracy);
  }
  for (const auto& method : order) plot.series.push_back(by_method[method]);

  // The study's curve is FC_NN's: beside another model it would compare unlike with unlike.
  if (fc_nn) {
    PlotSeries study{"study (PyTorch, reported)", {}, {}, true, true};
    for (size_t b = 0; b < study_reference_accuracy().size(); ++b) {
      study.x.push_back(static_cast<double>(b + 1));
      study.y.push_back(study_reference_accuracy()[b]);
    }
    plot.series.push_back(study);
  }
  char label[64];
  std::snprintf(label, sizeof label, "float32 (%.2f%%)", 100 * result.float_accuracy);
  plot.series.push_back({label, {0.5, 8.5}, {100 * result.float_accuracy, 100 * result.float_accuracy},
                         true, false});

  write_line_plot(plot, out_dir + "/accuracy_vs_bits.png");
  write_line_plot(plot, out_dir + "/accuracy_vs_bits.svg");
  write_file_atomic(json_path, result.to_json().dump(2) + "\n");
}

}  // namespace lowbit
