// Line charts and histograms drawn with PLplot (see plot_device.h for the stream plumbing).
#include "lowbit/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <mutex>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "report/plot_device.h"

namespace lowbit {
namespace {

using namespace plot_detail;

constexpr int kWidth = 900, kHeight = 600;
// Viewport in normalized page coordinates: room for the title above and the labels beside.
constexpr double kLeft = 0.09, kRight = 0.97, kBottom = 0.12, kTop = 0.90;
constexpr int kSolid = 1, kDashed = 3;  // PLplot style 3: long dashes, readable at 3 px
constexpr double kLineWidth = 3.0;
// One glyph a series, as many as the palette has colours (plot_device.h).
const char* const kMarkerGlyphs[] = {"●", "■", "▲", "◆", "▼", "⬟", "★", "◀", "▶", "○", "□", "△"};
static_assert(std::size(kMarkerGlyphs) == kSeriesColours);

std::mutex& plplot_mutex() {  // PLplot keeps global state
  static std::mutex mutex;
  return mutex;
}

void check_finite(const std::vector<double>& values, const std::string& what,
                  const std::string& path) {
  for (double v : values)
    if (!std::isfinite(v)) throw Error(path + ": " + what + " contains a NaN or infinite value");
}

// Reversed ranges are a caller's mistake; an empty range (one x value) is widened to show it.
void check_range(double& low, double& high, const std::string& axis, const std::string& path) {
  if (!std::isfinite(low) || !std::isfinite(high) || low > high)
    throw Error(path + ": " + axis + " range [" + std::to_string(low) + ", " +
                std::to_string(high) + "] is not a finite, increasing range");
  if (low == high) {
    const double pad = low == 0 ? 0.5 : std::abs(low) * 0.05;
    low -= pad;
    high += pad;
  }
}

void check_line_plot(LinePlot& plot, const std::string& path) {
  if (plot.series.empty()) throw Error(path + ": line plot has no series");
  for (const PlotSeries& s : plot.series) {
    if (s.x.empty() || s.x.size() != s.y.size())
      throw Error(path + ": series '" + s.label + "' needs as many x as y values, at least one");
    check_finite(s.x, "series '" + s.label + "' x", path);
    check_finite(s.y, "series '" + s.label + "' y", path);
  }
  check_finite(plot.x_ticks, "x_ticks", path);
  check_range(plot.x_min, plot.x_max, "x", path);
  check_range(plot.y_min, plot.y_max, "y", path);
}

// y_label_offset: in character heights left of the axis, clear of the widest tick label.
void draw_title_and_labels(plstream& pls, const std::string& title, const std::string& x_label,
                           const std::string& y_label, double y_label_offset = 3.6) {
  pls.col0(kInk);
  pls.schr(0, 1.5);
  pls.mtex("t", 1.6, 0.5, 0.5, escape_text(title).c_str());
  pls.schr(0, 1.2);
  pls.mtex("b", 2.8, 0.5, 0.5, escape_text(x_label).c_str());
  pls.mtex("l", y_label_offset, 0.5, 0.5, escape_text(y_label).c_str());
}

// Grid first so curves and axes are drawn over it.
void draw_axes(plstream& pls, const LinePlot& plot) {
  pls.schr(0, 1.1);
  pls.width(1);
  const bool own_x_ticks = !plot.x_ticks.empty();
  pls.col0(kGrid);
  pls.box(own_x_ticks ? "" : "g", 0, 0, "g", 0, 0);
  const double tick_length = 0.012 * (plot.y_max - plot.y_min);
  for (double tick : plot.x_ticks) {
    if (tick < plot.x_min || tick > plot.x_max) continue;
    pls.col0(kGrid);
    pls.join(tick, plot.y_min, tick, plot.y_max);
    pls.col0(kInk);
    pls.join(tick, plot.y_min, tick, plot.y_min + tick_length);
    char label[32];
    std::snprintf(label, sizeof label, "%g", tick);
    const double position = (tick - plot.x_min) / (plot.x_max - plot.x_min);
    pls.mtex("b", 1.3, position, 0.5, label);
  }
  pls.col0(kInk);
  pls.box(own_x_ticks ? "bc" : "bcnst", 0, 0, "bcnstv", 0, 0);
}

void draw_line(plstream& pls, const PlotSeries& s, int index) {
  if (!s.line) return;
  pls.col0(series_colour(index));
  pls.width(kLineWidth);
  pls.lsty(s.dashed ? kDashed : kSolid);
  pls.line(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data());
  pls.lsty(kSolid);
}

void draw_markers(plstream& pls, const PlotSeries& s, int index) {
  if (!s.markers) return;
  pls.col0(series_colour(index));
  pls.schr(0, 0.9 * s.marker_size);
  pls.string(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data(), kMarkerGlyphs[index % kSeriesColours]);
}

PLINT legend_position(LegendCorner corner) {
  switch (corner) {
    case LegendCorner::upper_left: return PL_POSITION_TOP | PL_POSITION_LEFT;
    case LegendCorner::upper_right: return PL_POSITION_TOP | PL_POSITION_RIGHT;
    case LegendCorner::lower_left: return PL_POSITION_BOTTOM | PL_POSITION_LEFT;
    case LegendCorner::lower_right: break;
  }
  return PL_POSITION_BOTTOM | PL_POSITION_RIGHT;
}

void draw_legend(plstream& pls, const LinePlot& plot) {
  const std::size_t n = plot.series.size();
  std::vector<PLINT> options(n), colours(n), styles(n), counts(n, 1), text_colours(n, kInk);
  std::vector<PLFLT> widths(n, kLineWidth), symbol_scales(n, 0.9);
  std::vector<std::string> labels(n);
  std::vector<const char*> texts(n), symbols(n);
  for (std::size_t i = 0; i < n; ++i) {
    const PlotSeries& s = plot.series[i];
    options[i] = (s.line ? PL_LEGEND_LINE : 0) | (s.markers ? PL_LEGEND_SYMBOL : 0);
    colours[i] = series_colour(static_cast<int>(i));
    styles[i] = s.dashed ? kDashed : kSolid;
    labels[i] = escape_text(s.label);
    texts[i] = labels[i].c_str();
    symbols[i] = kMarkerGlyphs[i % kSeriesColours];
    symbol_scales[i] = 0.9 * std::min(s.marker_size, 1.5);
  }
  pls.schr(0, 1.1);
  PLFLT width = 0, height = 0;
  pls.legend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             legend_position(plot.legend_corner) | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT,
             0.02, 0.03, 0.07, kBackground, kGrid, kSolid, 0, 0, static_cast<PLINT>(n),
             options.data(), 0.6, 1.0, 2.2, 0.0, text_colours.data(), texts.data(), nullptr,
             nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(),
             colours.data(), symbol_scales.data(), counts.data(), symbols.data());
}

}  // namespace

void write_line_plot(const LinePlot& input, const std::string& path) {
  LinePlot plot = input;
  check_line_plot(plot, path);
  std::lock_guard lock(plplot_mutex());
  AtomicPath out(path);
  auto pls = open_plot(path, out.temp_path(), kWidth, kHeight);
  pls->adv(0);
  pls->vpor(kLeft, kRight, kBottom, kTop);
  pls->wind(plot.x_min, plot.x_max, plot.y_min, plot.y_max);
  draw_axes(*pls, plot);
  // All lines before any markers, so no line crosses over another series' points.
  for (std::size_t i = 0; i < plot.series.size(); ++i)
    draw_line(*pls, plot.series[i], static_cast<int>(i));
  for (std::size_t i = 0; i < plot.series.size(); ++i)
    draw_markers(*pls, plot.series[i], static_cast<int>(i));
  draw_legend(*pls, plot);
  draw_title_and_labels(*pls, plot.title, plot.x_label, plot.y_label);
  finish_plot(std::move(pls), path, out.temp_path());
  if (path.ends_with(".svg")) add_svg_title(path, out.temp_path(), plot.title);
  out.commit();
}

void write_histogram(const Histogram& histogram, const std::string& path) {
  if (histogram.values.empty()) throw Error(path + ": histogram has no values");
  if (histogram.bins < 1 || histogram.bins > 10000)
    throw Error(path + ": histogram bins must be in 1..10000, got " +
                std::to_string(histogram.bins));
  check_finite(histogram.values, "histogram values", path);
  check_finite(histogram.markers, "histogram markers", path);

  const auto [lowest, highest] =
      std::minmax_element(histogram.values.begin(), histogram.values.end());
  double low = *lowest, high = *highest;
  check_range(low, high, "value", path);
  const double bin_width = (high - low) / histogram.bins;
  std::vector<double> counts(histogram.bins, 0.0);
  for (double v : histogram.values) {
    const int bin = std::min(static_cast<int>((v - low) / bin_width), histogram.bins - 1);
    ++counts[bin];
  }
  // The window also shows markers outside the values' range, e.g. a clipping range wider
  // than the data.
  double x_min = low, x_max = high;
  for (double m : histogram.markers) x_min = std::min(x_min, m), x_max = std::max(x_max, m);
  const double pad = 0.03 * (x_max - x_min);
  const double y_max = *std::max_element(counts.begin(), counts.end()) * 1.08;

  std::lock_guard lock(plplot_mutex());
  AtomicPath out(path);
  auto pls = open_plot(path, out.temp_path(), kWidth, kHeight);
  pls->adv(0);
  // Counts in plain digits ("f"): PLplot's own scaling would print "(x10^4)" above the axis,
  // into the title. Room for six digits.
  pls->vpor(kLeft + 0.03, kRight, kBottom, kTop);
  pls->wind(x_min - pad, x_max + pad, 0, y_max);
  pls->schr(0, 1.1);
  pls->width(1);
  pls->col0(kGrid);
  pls->box("", 0, 0, "g", 0, 0);
  for (int b = 0; b < histogram.bins; ++b) {
    if (counts[b] == 0) continue;
    const double left = low + b * bin_width, right = left + bin_width;
    const PLFLT xs[] = {left, left, right, right}, ys[] = {0, counts[b], counts[b], 0};
    pls->col0(series_colour(0));
    pls->fill(4, xs, ys);
    if (bin_width * kWidth > 4 * (x_max - x_min)) {  // a white edge only where bars are wide
      pls->col0(kBackground);
      pls->line(4, xs, ys);
    }
  }
  pls->col0(series_colour(5));  // vermillion stands out against the blue bars
  pls->width(kLineWidth);
  pls->lsty(kDashed);
  pls->schr(0, 0.9);
  for (double m : histogram.markers) {
    pls->join(m, 0, m, y_max);
    // The value beside the line, on its left near the right edge so it is not clipped.
    const bool near_right = m > x_max - 0.1 * (x_max - x_min);
    char label[32];
    std::snprintf(label, sizeof label, near_right ? "%.3g " : " %.3g", m);
    pls->ptex(m, y_max * 0.96, 1, 0, near_right ? 1 : 0, label);
  }
  pls->lsty(kSolid);
  pls->width(1);
  pls->col0(kInk);
  pls->schr(0, 1.1);
  pls->box("bcnst", 0, 0, "bcnstvf", 0, 0);
  draw_title_and_labels(*pls, histogram.title, histogram.x_label, "count", 5.6);
  finish_plot(std::move(pls), path, out.temp_path());
  if (path.ends_with(".svg")) add_svg_title(path, out.temp_path(), histogram.title);
  out.commit();
}

}  // namespace lowbit
