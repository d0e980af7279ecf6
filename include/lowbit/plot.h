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
  bool line = true;  // false: markers only, a scatter of points
  double marker_size = 1.0;  // times the usual marker size, e.g. larger for a chosen point
};

// Where the legend sits inside the axes; lower right suits curves that rise, like accuracy
// against bits.
enum class LegendCorner { lower_right, upper_right, lower_left, upper_left };

struct LinePlot {
  std::string title, x_label, y_label;
  // Axis ranges: min > max is an error; min == max is widened a little around the value.
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  std::vector<PlotSeries> series;  // at least one; a reference level is a two-point series
  std::vector<double> x_ticks;  // labelled x ticks, e.g. bits 1..8; empty: let PLplot choose
  LegendCorner legend_corner = LegendCorner::lower_right;
};

// Writes the chart to `path`, 900x600 (pixels for .png, points for .svg); the format follows
// the extension. Atomic: a failed render leaves no file. Throws lowbit::Error naming `path` on
// a bad extension, no series, NaN or infinite values, a bad range, or a file it cannot write.
void write_line_plot(const LinePlot& plot, const std::string& path);

struct Histogram {
  std::string title, x_label;  // the y axis is "count"
  std::vector<double> values;  // at least one, all finite
  int bins = 64;               // equal bins over [min, max] of the values; 1..10000
  std::vector<double> markers;  // vertical lines, e.g. a chosen clipping range
};
// Same output rules and errors as write_line_plot.
void write_histogram(const Histogram& histogram, const std::string& path);

}  // namespace lowbit
