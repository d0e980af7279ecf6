// PLplot cairo streams that render into a temporary file and report errors as lowbit::Error.
#include "report/plot_device.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "lowbit/error.h"

namespace lowbit::plot_detail {
namespace {

// Set by PLplot's abort handler; PLplot's state is global, so plots are drawn one at a time.
std::string plplot_error;

void remember_plplot_error(const char* message) {
  if (plplot_error.empty()) plplot_error = message ? message : "unknown error";
}

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string device_for(const std::string& path) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension == ".png") return "pngcairo";
  if (extension == ".svg") return "svgcairo";
  throw Error(path + ": cannot plot to '" + extension + "' files; use .png or .svg");
}

// PLplot asks on stdin for another device when the requested one is missing, so check first.
bool device_available(const std::string& device) {
  int count = 128;
  std::vector<const char*> menu(count), names(count);
  const char** menu_data = menu.data();
  const char** name_data = names.data();
  plgDevs(&menu_data, &name_data, &count);
  for (int i = 0; i < count; ++i)
    if (name_data[i] && device == name_data[i]) return true;
  return false;
}

}  // namespace

int series_colour(int index) { return kFirstSeries + index % kSeriesColours; }

std::unique_ptr<plstream> open_plot(const std::string& path, const std::string& temp_path,
                                    int width, int height) {
  const std::string device = device_for(path);
  // PLplot asks on stdin for a new name when it cannot open the file, and treats "%n" in a
  // name as a family-member number: create the file here so both cases fail cleanly.
  if (path.find('%') != std::string::npos)
    throw Error(path + ": plot file names may not contain '%'");
  if (std::FILE* probe = std::fopen(temp_path.c_str(), "wb")) {
    std::fclose(probe);
  } else {
    throw Error(path + ": cannot create file: " + std::strerror(errno));
  }
  if (!device_available(device))
    throw Error(path + ": PLplot device " + device + " is not installed (plplot-driver-cairo)");

  plplot_error.clear();
  plsabort(remember_plplot_error);
  auto stream = std::make_unique<plstream>();
  stream->sdev(device.c_str());
  stream->sfnam(temp_path.c_str());
  stream->spage(0, 0, width, height, 0, 0);
  // White background, dark ink, light grid, then the series: first the palette that stays
  // distinct in print and for common colour blindness (Okabe & Ito, less its yellow), then four
  // darker ones, so that a sweep of nine methods with its two reference lines repeats none.
  // Markers differ too (plot.cc), for when two colours look alike.
  static const PLINT red[] = {255, 34, 222, 0, 230, 0, 204, 86, 213, 117, 110, 0, 140, 120, 160};
  static const PLINT green[] = {255, 34, 222, 114, 159, 158, 121, 180, 94, 112, 110, 0, 86, 120, 0};
  static const PLINT blue[] = {255, 34, 222, 178, 0, 115, 167, 233, 0, 179, 110, 0, 75, 0, 60};
  static_assert(std::size(red) == kFirstSeries + kSeriesColours);
  stream->scmap0n(kFirstSeries + kSeriesColours);
  stream->scmap0(red, green, blue, kFirstSeries + kSeriesColours);
  stream->init();
  stream->sfont(PL_FCI_SANS, PL_FCI_UPRIGHT, PL_FCI_MEDIUM);
  if (!plplot_error.empty()) throw Error(path + ": PLplot: " + one_line(plplot_error));
  return stream;
}

void finish_plot(std::unique_ptr<plstream> stream, const std::string& path,
                 const std::string& temp_path) {
  stream.reset();  // plend1: the cairo driver writes and closes the file
  plsabort(nullptr);
  if (!plplot_error.empty()) throw Error(path + ": PLplot: " + one_line(plplot_error));
  std::error_code ec;
  if (std::filesystem::file_size(temp_path, ec) == 0 || ec)
    throw Error(path + ": PLplot wrote nothing");
}

void add_svg_title(const std::string& path, const std::string& temp_path,
                   const std::string& title) {
  std::ifstream in(temp_path, std::ios::binary);
  std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t open = svg.find("<svg");
  const std::size_t end = open == std::string::npos ? open : svg.find('>', open);
  if (end == std::string::npos) throw Error(path + ": PLplot wrote no <svg> element");
  std::string element = "\n<title>";
  for (char c : title) {
    if (c == '&') element += "&amp;";
    else if (c == '<') element += "&lt;";
    else if (c == '>') element += "&gt;";
    else element += c;
  }
  element += "</title>";
  svg.insert(end + 1, element);
  std::ofstream file(temp_path, std::ios::binary | std::ios::trunc);
  file << svg;
  file.flush();
  if (!file) throw Error(path + ": write failed: " + std::strerror(errno));
}

std::string escape_text(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '#') escaped += '#';
    escaped += c;
  }
  return escaped;
}

}  // namespace lowbit::plot_detail
