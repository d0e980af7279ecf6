// Opening a PLplot cairo stream that renders into a temporary file, with PLplot's errors
// turned into lowbit::Error instead of messages on stderr or a call to exit().
#pragma once

#include <plstream.h>

#include <memory>
#include <string>

namespace lowbit::plot_detail {

// Chart colours, as indices into colour map 0 (set up by open_plot).
enum Colour : int { kBackground = 0, kInk = 1, kGrid = 2, kFirstSeries = 3 };
inline constexpr int kSeriesColours = 12;
int series_colour(int index);  // cycles through the kSeriesColours of the series palette

// A PLplot stream for one chart: the device is picked from `path`'s extension (.png: pngcairo,
// .svg: svgcairo), the page is `width` x `height` (pixels for PNG, points for SVG), output goes
// to `temp_path`. Throws lowbit::Error naming `path` if the extension or device is not
// supported or `temp_path` cannot be created.
std::unique_ptr<plstream> open_plot(const std::string& path, const std::string& temp_path,
                                    int width, int height);

// Ends the stream (the cairo driver writes the file here) and throws lowbit::Error naming
// `path` if PLplot reported an error while drawing or wrote nothing.
void finish_plot(std::unique_ptr<plstream> stream, const std::string& path,
                 const std::string& temp_path);

// Cairo draws SVG text as glyph outlines; a <title> element keeps the chart's title readable
// by viewers, screen readers and search. Throws lowbit::Error naming `path` on failure.
void add_svg_title(const std::string& path, const std::string& temp_path,
                   const std::string& title);

// PLplot reads '#' as the start of an escape sequence; doubles it so user text prints as is.
std::string escape_text(const std::string& text);

}  // namespace lowbit::plot_detail
