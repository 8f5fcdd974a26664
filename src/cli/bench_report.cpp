#include "cli/bench_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.hpp"

namespace mw::cli {

namespace {

constexpr std::string_view k_missing = "\u2013";  // an en dash: a figure nobody measured

// 2026-12-05T11:13:25Z; "" when the time cannot be told.
std::string iso_utc(std::int64_t unix_ms) {
  const auto seconds = static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) {
    return "";
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

// ---- CSV

// Six decimals (a microsecond), trailing zeros dropped: 0.0132 rather than 0.013200000000000002.
std::string csv_number(double v) {
  if (!std::isfinite(v)) {
    return "";  // not a figure: as good as missing
  }
  std::string s = fmt::format("{:.6f}", v);
  while (s.back() == '0') {
    s.pop_back();
  }
  if (s.back() == '.') {
    s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

std::string csv_number(const std::optional<double>& v) {
  return v ? csv_number(*v) : std::string();
}

std::string csv_number(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string();
}

void csv_row(std::string& out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += fields[i];
  }
  out += '\n';
}

// ---- HTML: numbers

// About three significant figures: 1234, 123, 12.3, 1.23, 0.123.
std::string figure(double v) {
  const double a = std::fabs(v);
  if (a >= 100) {
    return fmt::format("{:.0f}", v);
  }
  if (a >= 10) {
    return fmt::format("{:.1f}", v);
  }
  if (a >= 1) {
    return fmt::format("{:.2f}", v);
  }
  return fmt::format("{:.3f}", v);
}

std::string figure(const std::optional<double>& v, std::string_view unit = "") {
  if (!v || !std::isfinite(*v)) {
    return std::string(k_missing);
  }
  return unit.empty() ? figure(*v) : fmt::format("{} {}", figure(*v), unit);
}

// Seconds shown in milliseconds (TTFT, ITL, TPOT).
std::string millis(const std::optional<double>& s) {
  return s ? figure(*s * 1000.0, "ms") : figure(s);
}

std::string bytes(const std::optional<std::uint64_t>& v) {
  return v ? format_bytes(*v) : std::string(k_missing);
}

// A label cut to `max` bytes at a UTF-8 character boundary, with an ellipsis when cut. Not escaped.
std::string cut(std::string_view text, std::size_t max) {
  if (text.size() <= max) {
    return std::string(text);
  }
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
    --end;
  }
  return std::string(text.substr(0, end)) + "\u2026";
}

// ---- SVG charts

constexpr double k_width = 960;
constexpr double k_left = 78;
constexpr double k_right = 940;
constexpr double k_top = 24;
constexpr double k_bottom = 254;
constexpr double k_height = 330;  // x ticks, the x axis label and the legend below the plot

constexpr std::array<std::string_view, 10> k_palette{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                     "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

std::string_view colour(std::size_t i) {
  return k_palette[i % k_palette.size()];
}

std::string px(double v) {
  return fmt::format("{:.1f}", v);
}

struct Axis {
  double lo = 0;
  double hi = 1;
  std::vector<double> ticks;
  [[nodiscard]] double at(double v, double from, double to) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

// About five round ticks (1, 2 or 5 × 10^k apart) covering lo..hi.
Axis nice_axis(double lo, double hi) {
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const double raw = (hi - lo) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  Axis axis;
  axis.lo = std::floor(lo / step) * step;
  axis.hi = std::ceil(hi / step) * step;
  if (!(axis.hi > axis.lo)) {
    axis.hi = axis.lo + step;
  }
  const auto count = static_cast<long>(std::lround((axis.hi - axis.lo) / step));
  for (long i = 0; i <= count; ++i) {
    axis.ticks.push_back(axis.lo + static_cast<double>(i) * step);
  }
  return axis;
}

std::string tick_label(double v) {
  if (std::fabs(v) < 1e-9) {
    return "0";
  }
  std::string s = fmt::format("{:.3f}", v);
  while (!s.empty() && s.back() == '0') {
    s.pop_back();
  }
  if (!s.empty() && s.back() == '.') {
    s.pop_back();
  }
  return s;
}

std::string svg_open(std::string_view name, std::size_t series, std::string_view title, double height) {
  return fmt::format(
      "<figure class=\"chart-box\"><figcaption>{}</figcaption>\n"
      "<svg class=\"chart\" data-chart=\"{}\" data-series=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "aria-label=\"{}\">\n",
      html_escape(title), name, series, k_width, height, html_escape(title));
}

// The y grid, its tick labels and both axis labels.
void y_axis(std::string& out, const Axis& y, std::string_view y_label, std::string_view x_label) {
  for (const double tick : y.ticks) {
    const double py = y.at(tick, k_bottom, k_top);
    out += fmt::format(
        "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>"
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        px(k_left), px(k_right), px(py), px(py), px(k_left - 6), px(py + 4), tick_label(tick));
  }
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(k_left), px(k_top),
                     px(k_bottom));
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\"/>\n", px(k_left), px(k_right),
                     px(k_bottom));
  out += fmt::format(
      "<text class=\"axis-label\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
      px((k_top + k_bottom) / 2), html_escape(y_label));
  out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     px((k_left + k_right) / 2), px(k_bottom + 40), html_escape(x_label));
}

// The legend below the plot, wrapped onto more rows when it is wider than the plot. Returns the chart's height.
double legend(std::string& out, const std::vector<std::string>& names, std::string_view extra = "") {
  out += "<g class=\"legend\">";
  double x = k_left;
  double y = k_height - 12;
  const auto place = [&](double width) {
    if (x > k_left && x + width > k_right) {
      x = k_left;
      y += 18;
    }
  };
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double width = 30 + 7.0 * static_cast<double>(std::min<std::size_t>(names[i].size(), 40));
    place(width);
    out += fmt::format(
        "<g class=\"legend-item\" data-name=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" "
        "fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
        html_escape(names[i]), px(x), px(y - 9), colour(i), px(x + 19), px(y), html_escape(cut(names[i], 40)));
    x += width;
  }
  if (!extra.empty()) {
    const double width = 40 + 7.0 * static_cast<double>(extra.size());
    place(width);
    out += fmt::format(
        "<g class=\"legend-item\"><line class=\"limit\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text></g>",
        px(x), px(x + 22), px(y - 4), px(y - 4), px(x + 27), px(y), html_escape(extra));
  }
  out += "</g>\n";
  return y + 12;
}

struct Series {
  std::string name;
  std::vector<std::optional<double>> values{};  // one per point of the timeline, already in the axis unit
};

struct LineChart {
  std::string name;
  std::string title;
  std::string y_label;
  std::vector<Series> series{};
  std::optional<double> limit{};  // a dashed line (the temperature limit)
  std::string limit_label{};
  bool from_zero = true;
};

// "M x y L x y …": a missing value ends a segment and the next value begins a new one (never a drop to 0). A lone
// point is drawn as a zero-length segment, which the round line cap shows as a dot.
std::string path_data(const std::vector<double>& t, const std::vector<std::optional<double>>& values, const Axis& x,
                      const Axis& y) {
  std::string d;
  bool open = false;
  bool lone = false;
  std::string last;
  for (std::size_t i = 0; i < t.size() && i < values.size(); ++i) {
    if (!values[i] || !std::isfinite(*values[i])) {
      if (open && lone) {
        d += " L" + last;
      }
      open = false;
      continue;
    }
    const std::string point = px(x.at(t[i], k_left, k_right)) + " " + px(y.at(*values[i], k_bottom, k_top));
    if (!open) {
      d += (d.empty() ? "M" : " M") + point;
      open = true;
      lone = true;
    } else {
      d += " L" + point;
      lone = false;
    }
    last = point;
  }
  if (open && lone) {
    d += " L" + last;
  }
  return d;
}

void phase_marks(std::string& out, const std::vector<BenchMark>& marks, const Axis& x) {
  for (const auto& mark : marks) {
    const double start = std::clamp(mark.start_s, x.lo, x.hi);
    const double end = std::clamp(std::max(mark.end_s, mark.start_s), x.lo, x.hi);
    const double x0 = x.at(start, k_left, k_right);
    const double x1 = x.at(end, k_left, k_right);
    const std::string label = mark.phase == BenchPhase::level
                                  ? fmt::format("{}, c={}", mark.model, mark.concurrency)
                                  : fmt::format("{}, {}", mark.model, to_string(mark.phase));
    out += fmt::format(
        "<rect class=\"mark\" data-phase=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} ({}\u2013{} "
        "s)</title></rect>",
        to_string(mark.phase), px(x0), px(k_top), px(std::max(x1 - x0, 0.5)), px(k_bottom - k_top), html_escape(label),
        figure(mark.start_s), figure(mark.end_s));
    // The label of a load or a level, written down the band; the other phases keep theirs in the tooltip.
    if ((mark.phase == BenchPhase::level || mark.phase == BenchPhase::load) && x1 - x0 >= 12) {
      const std::string text = mark.phase == BenchPhase::level
                                   ? fmt::format("{}, c={}", cut(mark.model, 24), mark.concurrency)
                                   : fmt::format("{}, load", cut(mark.model, 24));
      out += fmt::format("<text class=\"mark-label\" transform=\"translate({} {}) rotate(90)\">{}</text>", px(x0 + 4),
                         px(k_top + 4), html_escape(text));
    }
    out += '\n';
  }
}

void line_chart(std::string& out, const LineChart& chart, const std::vector<double>& t,
                const std::vector<BenchMark>& marks) {
  double lo = chart.from_zero ? 0.0 : std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (const auto& s : chart.series) {
    for (const auto& v : s.values) {
      if (v && std::isfinite(*v)) {
        lo = std::min(lo, *v);
        hi = std::max(hi, *v);
      }
    }
  }
  if (chart.limit) {
    lo = std::min(lo, *chart.limit);
    hi = std::max(hi, *chart.limit);
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0;
    hi = 1;
  }
  const Axis y = nice_axis(lo, hi + (hi - lo) * 0.05);
  Axis x;
  x.lo = t.empty() ? 0 : t.front();
  x.hi = t.empty() ? 1 : std::max(t.back(), x.lo + 1);
  x.ticks = nice_axis(x.lo, x.hi).ticks;

  const auto open_at = out.size();  // the <svg> goes here once the legend's height is known
  phase_marks(out, marks, x);
  y_axis(out, y, chart.y_label, "time since the run began (s)");
  for (const double tick : x.ticks) {
    if (tick < x.lo - 1e-9 || tick > x.hi + 1e-9) {
      continue;
    }
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       px(x.at(tick, k_left, k_right)), px(k_bottom + 16), tick_label(tick));
  }
  out += '\n';
  if (chart.limit) {
    const double py = y.at(*chart.limit, k_bottom, k_top);
    out += fmt::format("<line class=\"limit\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"><title>{}</title></line>\n",
                       px(k_left), px(k_right), px(py), px(py), html_escape(chart.limit_label));
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const auto& s = chart.series[i];
    names.push_back(s.name);
    out += fmt::format("<path class=\"series\" data-name=\"{}\" stroke=\"{}\" d=\"{}\"><title>{}</title></path>\n",
                       html_escape(s.name), colour(i), path_data(t, s.values, x, y), html_escape(s.name));
  }
  const double height = legend(out, names, chart.limit ? chart.limit_label : "");
  out.insert(open_at, svg_open(chart.name, chart.series.size(), chart.title, height));
  out += "</svg></figure>\n";
}

struct BarChart {
  std::string name;
  std::string title;
  std::string y_label;
  std::string x_label;
  std::string unit;  // in the tooltips
  std::vector<std::string> categories{};
  std::vector<std::string> series_names{};
  std::vector<std::vector<std::optional<double>>> values{};  // [series][category], in the axis unit
};

void bar_chart(std::string& out, const BarChart& chart) {
  double hi = 0;
  for (const auto& s : chart.values) {
    for (const auto& v : s) {
      if (v && std::isfinite(*v)) {
        hi = std::max(hi, *v);
      }
    }
  }
  const Axis y = nice_axis(0, hi > 0 ? hi * 1.05 : 1);
  const auto open_at = out.size();  // the <svg> goes here once the legend's height is known
  y_axis(out, y, chart.y_label, chart.x_label);
  const double group = (k_right - k_left) / static_cast<double>(std::max<std::size_t>(chart.categories.size(), 1));
  const double bar = group * 0.8 / static_cast<double>(std::max<std::size_t>(chart.series_names.size(), 1));
  // Each category's label, cut to its width; none when they are too narrow to read (the bars' tooltips name them).
  const auto label_chars = static_cast<std::size_t>(std::max(group / 6.5, 4.0));
  for (std::size_t c = 0; c < chart.categories.size() && group >= 24; ++c) {
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}<title>{}</title></text>",
                       px(k_left + group * (static_cast<double>(c) + 0.5)), px(k_bottom + 16),
                       html_escape(cut(chart.categories[c], label_chars)), html_escape(chart.categories[c]));
  }
  out += '\n';
  for (std::size_t s = 0; s < chart.series_names.size(); ++s) {
    out +=
        fmt::format("<g class=\"series\" data-name=\"{}\" fill=\"{}\">", html_escape(chart.series_names[s]), colour(s));
    for (std::size_t c = 0; c < chart.categories.size(); ++c) {
      const double bx = k_left + group * (static_cast<double>(c) + 0.1) + bar * static_cast<double>(s);
      const std::optional<double> v =
          s < chart.values.size() && c < chart.values[s].size() ? chart.values[s][c] : std::optional<double>{};
      if (!v || !std::isfinite(*v)) {
        out += fmt::format("<text class=\"missing\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                           px(bx + bar / 2), px(k_bottom - 4), k_missing);
        continue;
      }
      const double top = y.at(*v, k_bottom, k_top);
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} \u00b7 {}: {} {}</title></rect>",
                         px(bx), px(top), px(std::max(bar - 1, 1.0)), px(std::max(k_bottom - top, 0.0)),
                         html_escape(chart.categories[c]), html_escape(chart.series_names[s]), figure(*v),
                         html_escape(chart.unit));
    }
    out += "</g>\n";
  }
  const double height = legend(out, chart.series_names);
  out.insert(open_at, svg_open(chart.name, chart.series_names.size(), chart.title, height));
  out += "</svg></figure>\n";
}

void note(std::string& out, std::string_view name, std::string_view text) {
  out += fmt::format("<p class=\"note\" data-chart-note=\"{}\">{}</p>\n", name, html_escape(text));
}

// The concurrency levels of the run: those asked for, then any other a model has.
std::vector<std::size_t> run_levels(const BenchRun& run) {
  std::vector<std::size_t> levels = run.settings.concurrency;
  for (const auto& m : run.models) {
    for (const auto& l : m.levels) {
      if (std::find(levels.begin(), levels.end(), l.concurrency) == levels.end()) {
        levels.push_back(l.concurrency);
      }
    }
  }
  return levels;
}

const BenchLevel* find_level(const BenchModel& model, std::size_t concurrency) {
  for (const auto& l : model.levels) {
    if (l.concurrency == concurrency) {
      return &l;
    }
  }
  return nullptr;
}

void throughput_chart(std::string& out, const BenchRun& run) {
  BarChart chart{.name = "throughput",
                 .title = "Throughput: output tokens per second, per model and concurrency",
                 .y_label = "output tokens/s",
                 .x_label = "model",
                 .unit = "tokens/s"};
  const auto levels = run_levels(run);
  bool any = false;
  for (const auto c : levels) {
    chart.series_names.push_back(fmt::format("c={}", c));
    chart.values.emplace_back();
  }
  for (const auto& m : run.models) {
    if (m.levels.empty()) {
      continue;
    }
    chart.categories.push_back(m.model);
    for (std::size_t i = 0; i < levels.size(); ++i) {
      const auto* level = find_level(m, levels[i]);
      chart.values[i].push_back(level != nullptr ? level->throughput.output_tokens_per_s : std::nullopt);
      any = any || chart.values[i].back().has_value();
    }
  }
  if (!any) {
    note(out, "throughput", "Throughput: no level was measured.");
    return;
  }
  bar_chart(out, chart);
}

void latency_chart(std::string& out, const BenchRun& run) {
  BarChart chart{.name = "latency",
                 .title = "Time to first token: p50, p90 and p99 per model and concurrency",
                 .y_label = "TTFT (ms)",
                 .x_label = "model, concurrency",
                 .unit = "ms",
                 .series_names = {"p50", "p90", "p99"},
                 .values = {{}, {}, {}}};
  double hi = 0;
  for (const auto& m : run.models) {
    for (const auto& l : m.levels) {
      chart.categories.push_back(fmt::format("{}, c={}", m.model, l.concurrency));
      const std::array<std::optional<double>, 3> p{l.ttft_s.median, l.ttft_s.p90, l.ttft_s.p99};
      for (std::size_t i = 0; i < p.size(); ++i) {
        chart.values[i].push_back(p[i]);
        if (p[i] && std::isfinite(*p[i])) {
          hi = std::max(hi, *p[i]);
        }
      }
    }
  }
  if (hi <= 0) {
    note(out, "latency", "Time to first token: no completed request.");
    return;
  }
  // Milliseconds under 10 s, seconds above.
  const double scale = hi < 10 ? 1000.0 : 1.0;
  if (scale == 1.0) {
    chart.y_label = "TTFT (s)";
    chart.unit = "s";
  }
  for (auto& s : chart.values) {
    for (auto& v : s) {
      if (v) {
        *v *= scale;
      }
    }
  }
  bar_chart(out, chart);
}

// Bytes in GiB, or MiB when the largest is under 1 GiB.
std::pair<double, std::string_view> byte_unit(std::uint64_t largest) {
  return largest >= k_gib ? std::pair<double, std::string_view>{static_cast<double>(k_gib), "GiB"}
                          : std::pair<double, std::string_view>{static_cast<double>(k_mib), "MiB"};
}

std::optional<double> scaled(const std::optional<std::uint64_t>& v, double unit) {
  return v ? std::optional<double>(static_cast<double>(*v) / unit) : std::nullopt;
}

void memory_chart(std::string& out, const BenchRun& run, const std::vector<double>& t) {
  using Field = std::optional<std::uint64_t> BenchPoint::*;
  const std::array<std::pair<Field, std::string_view>, 3> fields{{{&BenchPoint::anon, "container anon"},
                                                                  {&BenchPoint::working_set, "container working set"},
                                                                  {&BenchPoint::mem_available, "host MemAvailable"}}};
  std::uint64_t largest = 0;
  for (const auto& p : run.timeline) {
    for (const auto& f : fields) {
      largest = std::max(largest, (p.*(f.first)).value_or(0));
    }
  }
  const auto [unit, unit_name] = byte_unit(largest);
  LineChart chart{.name = "memory",
                  .title = "Memory over time: the server container and the host",
                  .y_label = fmt::format("memory ({})", unit_name)};
  for (const auto& f : fields) {
    Series s{.name = std::string(f.second)};
    bool any = false;
    for (const auto& p : run.timeline) {
      s.values.push_back(scaled(p.*(f.first), unit));
      any = any || s.values.back().has_value();
    }
    if (any) {
      chart.series.push_back(std::move(s));
    }
  }
  if (chart.series.empty()) {
    note(out, "memory", "Memory over time: no memory figures in the timeline.");
    return;
  }
  line_chart(out, chart, t, run.marks);
}

// The GPUs with at least one value of `value` in the timeline, in index order.
template <typename Get>
std::vector<Series> gpu_series(const BenchRun& run, Get value, std::string_view label) {
  std::vector<unsigned> indices;
  for (const auto& p : run.timeline) {
    for (const auto& g : p.gpus) {
      if (value(g) && std::find(indices.begin(), indices.end(), g.index) == indices.end()) {
        indices.push_back(g.index);
      }
    }
  }
  std::sort(indices.begin(), indices.end());
  std::vector<Series> series;
  for (const auto index : indices) {
    Series s{.name = fmt::format("GPU {}{}", index, label)};
    for (const auto& p : run.timeline) {
      std::optional<double> v;
      for (const auto& g : p.gpus) {
        if (g.index == index) {
          v = value(g);
        }
      }
      s.values.push_back(v);
    }
    series.push_back(std::move(s));
  }
  return series;
}

void gpu_charts(std::string& out, const BenchRun& run, const std::vector<double>& t) {
  std::uint64_t largest = 0;
  for (const auto& p : run.timeline) {
    for (const auto& g : p.gpus) {
      largest = std::max(largest, g.vram_used.value_or(0));
    }
  }
  const auto [unit, unit_name] = byte_unit(largest);
  LineChart vram{.name = "vram",
                 .title = "VRAM used per GPU over time",
                 .y_label = fmt::format("VRAM used ({})", unit_name),
                 .series = gpu_series(
                     run, [unit](const BenchGpuPoint& g) { return scaled(g.vram_used, unit); }, "")};
  LineChart temperature{.name = "temperature",
                        .title = "GPU temperature over time",
                        .y_label = "temperature (\u00b0C)",
                        .series = gpu_series(
                            run,
                            [](const BenchGpuPoint& g) {
                              return g.temperature_c ? std::optional<double>(static_cast<double>(*g.temperature_c))
                                                     : std::nullopt;
                            },
                            ""),
                        .limit = static_cast<double>(run.settings.temperature_limit_c),
                        .limit_label = fmt::format("limit {} \u00b0C", run.settings.temperature_limit_c),
                        .from_zero = false};
  if (vram.series.empty() && temperature.series.empty()) {
    note(out, "gpu", "No GPU data (NVML): no VRAM or temperature chart.");
    return;
  }
  if (vram.series.empty()) {
    note(out, "vram", "No VRAM figures from NVML.");
  } else {
    line_chart(out, vram, t, run.marks);
  }
  if (temperature.series.empty()) {
    note(out, "temperature", "No GPU temperatures from NVML.");
  } else {
    line_chart(out, temperature, t, run.marks);
  }
}

// ---- HTML: the page

constexpr std::string_view k_style = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:right;vertical-align:top}
td{white-space:nowrap}td.wrap{white-space:normal}
th{background:#f2f4f8;font-weight:600}td.text,th.text{text-align:left}
.facts th{text-align:left}
.banner{background:#fff3cd;border:1px solid #e0b84a;padding:8px 12px;margin:12px 0;font-weight:600}
.badge{display:inline-block;padding:0 8px;border-radius:9px;font-size:12px;font-weight:600;color:#fff;background:#6b7280}
.badge.done,.badge.pass{background:#2e7d32}.badge.fail,.badge.failed{background:#c62828}
.badge.skipped,.badge.unknown{background:#6b7280}.badge.interrupted{background:#b26a00}
.reason{color:#5b6372}.muted{color:#5b6372}.note{color:#5b6372;font-style:italic}
figure.chart-box{margin:16px 0;border:1px solid #d8dde6;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block;font-size:12px}
svg .grid{stroke:#e6e9ef;stroke-width:1}svg .axis{stroke:#7a8191;stroke-width:1}
svg .tick{fill:#4a5160;font-size:11px}svg .axis-label{fill:#1d2330;font-size:12px}
svg path.series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
svg .limit{stroke:#c62828;stroke-width:1.5;stroke-dasharray:6 4}
svg .mark{opacity:.28}svg .mark-label{fill:#3a4150;font-size:10px}
svg .mark[data-phase=load]{fill:#f5a623}svg .mark[data-phase=warmup]{fill:#f8e71c}
svg .mark[data-phase=level]{fill:#7ed0f0}svg .mark[data-phase=unload]{fill:#b8a1e3}
svg .mark[data-phase=cooldown]{fill:#c8ccd4}
svg .missing{fill:#7a8191}svg .legend text{fill:#1d2330}
svg .dim{opacity:.15}
)";

// Records script errors on <html data-script-errors> and marks <html data-rendered="yes"> once loaded (the browser
// test reads both); the legend hover only fades the other series. Nothing on the page needs it.
constexpr std::string_view k_script = R"(
(function () {
  var root = document.documentElement;
  function record(message) {
    try {
      var seen = root.getAttribute('data-script-errors');
      root.setAttribute('data-script-errors', (seen ? seen + '; ' : '') + String(message).slice(0, 200));
    } catch (e) {}
  }
  window.onerror = function (message) { record(message); return false; };
  window.addEventListener('unhandledrejection', function (e) { record('unhandled rejection: ' + (e && e.reason)); });
  document.addEventListener('DOMContentLoaded', function () {
    try {
      var items = document.querySelectorAll('svg.chart .legend-item[data-name]');
      Array.prototype.forEach.call(items, function (item) {
        var chart = item.closest('svg.chart');
        if (!chart) { return; }
        var name = item.getAttribute('data-name');
        function fade(on) {
          Array.prototype.forEach.call(chart.querySelectorAll('.series'), function (s) {
            s.classList.toggle('dim', on && s.getAttribute('data-name') !== name);
          });
        }
        item.addEventListener('mouseenter', function () { fade(true); });
        item.addEventListener('mouseleave', function () { fade(false); });
      });
    } catch (e) {
      record(e && e.message ? e.message : e);
    } finally {
      root.setAttribute('data-rendered', 'yes');
    }
  });
})();
)";

std::string levels_text(const std::vector<std::size_t>& levels) {
  std::string s;
  for (const auto c : levels) {
    s += (s.empty() ? "" : ", ") + std::to_string(c);
  }
  return s.empty() ? std::string(k_missing) : s;
}

void row(std::string& out, std::string_view name, std::string_view value_html) {
  out += fmt::format("<tr><th>{}</th><td class=\"text wrap\">{}</td></tr>\n", name, value_html);
}

void header(std::string& out, const BenchRun& run) {
  const auto& s = run.settings;
  out += fmt::format("<h1>memwarden bench: {}</h1>\n", html_escape(run.server));
  out += fmt::format("<p class=\"muted\">{}{}</p>\n", html_escape(iso_utc(run.started_at_ms)),
                     run.id > 0 ? fmt::format(" \u00b7 run {}", run.id) : std::string());
  if (run.interrupted) {
    out +=
        "<p class=\"banner\" data-interrupted=\"yes\">Interrupted: partial results. The figures below are what "
        "was measured before the run was stopped.</p>\n";
  }
  // Two settings a row: the page stays short.
  const std::vector<std::pair<std::string_view, std::string>> settings{
      {"server", html_escape(run.server)},
      {"URL", html_escape(run.url)},
      {"API", to_string(s.api)},
      {"started", html_escape(iso_utc(run.started_at_ms))},
      {"duration", figure(run.duration_s, "s")},
      {"concurrency levels", levels_text(s.concurrency)},
      {"runs per level, per client", std::to_string(s.runs)},
      {"warm-up requests", std::to_string(s.warmup)},
      {"prompt tokens", std::to_string(s.prompt_tokens)},
      {"max tokens", std::to_string(s.max_tokens)},
      {"context (ctx)", s.num_ctx ? std::to_string(*s.num_ctx) : "the server's default"},
      {"cool-down between models", figure(s.cooldown_s, "s")},
      {"temperature limit", fmt::format("{} \u00b0C", s.temperature_limit_c)},
      {"GPU utilisation target", fmt::format("{}%", s.gpu_utilisation_target_pct)},
      {"seed", std::to_string(s.seed)},
  };
  out += "<table class=\"facts settings\">\n";
  for (std::size_t i = 0; i < settings.size(); i += 2) {
    out += fmt::format("<tr><th>{}</th><td class=\"text\">{}</td>", settings[i].first, settings[i].second);
    if (i + 1 < settings.size()) {
      out += fmt::format("<th>{}</th><td class=\"text\">{}</td>", settings[i + 1].first, settings[i + 1].second);
    }
    out += "</tr>\n";
  }
  out += "</table>\n";
  if (!run.notes.empty()) {
    out += "<h3>Notes</h3><ul class=\"notes\">\n";
    for (const auto& n : run.notes) {
      out += fmt::format("<li>{}</li>\n", html_escape(n));
    }
    out += "</ul>\n";
  }
}

std::string badge(std::string_view what) {
  return fmt::format("<span class=\"badge {0}\">{0}</span>", what);
}

std::string planned_measured(const std::optional<std::uint64_t>& planned, const std::optional<std::uint64_t>& got) {
  return fmt::format("planned {} \u00b7 measured {}", bytes(planned), bytes(got));
}

void model_section(std::string& out, const BenchModel& m) {
  out += fmt::format("<section class=\"model\" data-status=\"{}\">\n<h2>{} {}</h2>\n", to_string(m.status),
                     html_escape(m.model), badge(to_string(m.status)));
  if (!m.reason.empty()) {
    out += fmt::format("<p class=\"reason\">{}</p>\n", html_escape(m.reason));
  }
  out += "<table class=\"facts\">\n";
  row(out, "load time", figure(m.load_s, "s"));
  row(out, "RAM", planned_measured(m.planned_ram, m.loaded_ram));
  row(out, "VRAM", planned_measured(m.planned_vram, m.server_vram));
  row(out, "size (server)", bytes(m.server_size));
  row(out, "processor", m.processor.empty() ? std::string(k_missing) : html_escape(m.processor));
  std::string unload = to_string(m.unload.verdict);
  if (m.unload.kept) {
    unload += fmt::format(" \u00b7 kept {}", format_bytes(*m.unload.kept));
  }
  row(out, "memory after unload", html_escape(unload));
  if (m.unload_error) {
    row(out, "unload error", html_escape(*m.unload_error));
  }
  out += "</table>\n";

  if (!m.levels.empty()) {
    out +=
        "<table class=\"levels\">\n<tr><th>concurrency</th><th>requests</th><th>failed</th><th>TTFT p50</th>"
        "<th>TTFT p90</th><th>TTFT p99</th><th>ITL p50</th><th>TPOT p50</th><th>e2e p50</th><th>e2e p99</th>"
        "<th>tok/s per request p50</th><th>requests/s</th><th>tokens/s</th></tr>\n";
    for (const auto& l : m.levels) {
      const auto& tp = l.throughput;
      out += fmt::format(
          "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
          l.concurrency, l.interrupted ? " <span class=\"badge interrupted\">partial</span>" : "",
          tp.completed + tp.failed, tp.failed, millis(l.ttft_s.median), millis(l.ttft_s.p90), millis(l.ttft_s.p99),
          millis(l.itl_s.median), millis(l.tpot_s.median), figure(l.e2e_s.median, "s"), figure(l.e2e_s.p99, "s"),
          figure(l.output_tokens_per_s.median), figure(tp.requests_per_s), figure(tp.output_tokens_per_s));
    }
    out += "</table>\n";
  }
  // The errors of failed requests, each once.
  std::vector<std::string> errors;
  for (const auto& s : m.samples) {
    if (!s.ok && !s.error.empty() && std::find(errors.begin(), errors.end(), s.error) == errors.end() &&
        errors.size() < 10) {
      errors.push_back(s.error);
    }
  }
  if (!errors.empty()) {
    out += "<h3>Errors</h3><ul class=\"errors\">\n";
    for (const auto& e : errors) {
      out += fmt::format("<li>{}</li>\n", html_escape(e));
    }
    out += "</ul>\n";
  }
  if (!m.verdicts.empty()) {
    out +=
        "<table class=\"verdicts\">\n<tr><th class=\"text\">criterion</th><th class=\"text\">verdict</th>"
        "<th class=\"text\">detail</th></tr>\n";
    for (const auto& v : m.verdicts) {
      out +=
          fmt::format("<tr><td class=\"text\">{}</td><td class=\"text\">{}</td><td class=\"text wrap\">{}</td></tr>\n",
                      html_escape(v.criterion), badge(to_string(v.outcome)), html_escape(v.detail));
    }
    out += "</table>\n";
  }
  out += "</section>\n";
}

}  // namespace

std::string csv_field(std::string_view text, bool guard_formula) {
  std::string field;
  if (guard_formula && !text.empty() &&
      (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' || text[0] == '\t' || text[0] == '\r')) {
    field += '\'';
  }
  field += text;
  if (field.find_first_of(",\"\r\n") == std::string::npos) {
    return field;
  }
  std::string quoted = "\"";
  for (const char c : field) {
    if (c == '"') {
      quoted += '"';
    }
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string bench_csv(const BenchRun& run) {
  std::string out;
  csv_row(out, {"run_started_at",
                "server",
                "api",
                "model",
                "concurrency",
                "repetition",
                "ok",
                "error",
                "start_s",
                "ttft_s",
                "itl_mean_s",
                "itl_p90_s",
                "tpot_s",
                "e2e_s",
                "output_tokens",
                "output_tokens_per_s",
                "decode_tokens_per_s",
                "prompt_tokens",
                "server_eval_count",
                "server_eval_s",
                "server_tokens_per_s",
                "server_prompt_eval_s",
                "server_load_s"});
  const std::string started = iso_utc(run.started_at_ms);
  const std::string server = csv_field(run.server);
  const std::string api = to_string(run.settings.api);
  // One row per sample: a skipped model (no samples) has none.
  for (const auto& m : run.models) {
    const std::string model = csv_field(m.model);
    for (const auto& s : m.samples) {
      csv_row(out, {started,
                    server,
                    api,
                    model,
                    std::to_string(s.concurrency),
                    std::to_string(s.repetition),
                    s.ok ? "true" : "false",
                    csv_field(s.error),
                    csv_number(s.start_s),
                    csv_number(s.ttft_s),
                    csv_number(s.itl_mean_s),
                    csv_number(s.itl_p90_s),
                    csv_number(s.tpot_s),
                    csv_number(s.e2e_s),
                    std::to_string(s.output_tokens),
                    csv_number(s.output_tokens_per_s),
                    csv_number(s.decode_tokens_per_s),
                    csv_number(s.prompt_tokens),
                    csv_number(s.eval_count),
                    csv_number(s.eval_s),
                    csv_number(s.server_tokens_per_s()),
                    csv_number(s.prompt_eval_s),
                    csv_number(s.load_s)});
    }
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string bench_html(const BenchRun& run) {
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing from the network, ever: only the inline style and script.
  out +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
      "script-src 'unsafe-inline'; img-src data:\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>memwarden bench \u00b7 {} \u00b7 {}</title>\n", html_escape(run.server),
                     html_escape(iso_utc(run.started_at_ms)));
  out += fmt::format("<style>{}</style>\n<script>{}</script>\n</head>\n<body>\n", k_style, k_script);
  header(out, run);
  for (const auto& m : run.models) {
    model_section(out, m);
  }

  out += "<h2>Charts</h2>\n";
  std::vector<double> t;
  t.reserve(run.timeline.size());
  for (const auto& p : run.timeline) {
    t.push_back(p.t_s);
  }
  throughput_chart(out, run);
  latency_chart(out, run);
  if (run.timeline.empty()) {
    note(out, "timeline", "No timeline was recorded: no memory, VRAM or temperature chart.");
  } else {
    memory_chart(out, run, t);
    gpu_charts(out, run, t);
  }
  out += "<p class=\"muted\">Made by memwarden bench. Missing figures are shown as \u2013.</p>\n</body>\n</html>\n";
  return out;
}

}  // namespace mw::cli
