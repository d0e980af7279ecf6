// Line and histogram charts rendered to PNG or SVG through PLplot's cairo driver.
#pragma once

#include <string>
#include <vector>

namespace lowbit {

struct PlotSeries {
  std::string label;  // legend entry
  std::vector<double> x, y;
  bool dashed = false;
  bool markers = true;
};

struct LinePlot {
  std::string title, x_label, y_label;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  std::vector<PlotSeries> series;
  std::vector<double> x_ticks;  // empty: let PLplot choose
};

// Writes the chart to `path`; the format follows the extension (.png or .svg). Atomic: a failed
// render leaves no file. Throws lowbit::Error naming `path` on failure.
void write_line_plot(const LinePlot& plot, const std::string& path);

struct Histogram {
  std::string title, x_label;
  std::vector<double> values;
  int bins = 64;
  std::vector<double> markers;  // vertical lines, e.g. a chosen clipping range
};
void write_histogram(const Histogram& histogram, const std::string& path);

}  // namespace lowbit
