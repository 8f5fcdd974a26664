#include "engine/bench_json.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <utility>

namespace mw::engine {

using nlohmann::json;

namespace {

// Bounds on what is read back, beyond the size of the text: what one run can hold.
constexpr std::size_t k_max_samples = 1'000'000;
constexpr std::size_t k_max_gpus = 64;
constexpr std::size_t k_max_marks = k_max_bench_models * (k_max_bench_levels + 4);
constexpr std::size_t k_max_notes = 1000;
constexpr std::size_t k_max_verdicts = 32;
constexpr int k_max_depth = 16;  // the schema nests 5 deep

// ---------------------------------------------------------------- writing

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
json opt(const std::optional<double>& v) {
  return v ? number_or_null(*v) : json(nullptr);
}
json opt(const std::optional<std::uint64_t>& v) {
  return v ? json(*v) : json(nullptr);
}
json opt(const std::optional<std::int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}
json opt(const std::optional<unsigned>& v) {
  return v ? json(*v) : json(nullptr);
}
json opt(const std::optional<std::string>& v) {
  return v ? json(*v) : json(nullptr);
}

json summary_json(const SampleSummary& s) {
  return {{"count", s.count},        {"left_out", s.left_out}, {"mean", opt(s.mean)},
          {"median", opt(s.median)}, {"p90", opt(s.p90)},      {"p99", opt(s.p99)},
          {"min", opt(s.min)},       {"max", opt(s.max)},      {"stddev", opt(s.stddev)}};
}

json throughput_json(const RunThroughput& t) {
  return {{"completed", t.completed},
          {"failed", t.failed},
          {"output_tokens", t.output_tokens},
          {"window_s", opt(t.window_s)},
          {"requests_per_s", opt(t.requests_per_s)},
          {"output_tokens_per_s", opt(t.output_tokens_per_s)}};
}

json settings_json(const BenchSettings& s) {
  return {{"api", to_string(s.api)},
          {"runs", s.runs},
          {"warmup", s.warmup},
          {"prompt_tokens", s.prompt_tokens},
          {"max_tokens", s.max_tokens},
          {"concurrency", s.concurrency},
          {"num_ctx", opt(s.num_ctx)},
          {"cooldown_s", number_or_null(s.cooldown_s)},
          {"seed", s.seed},
          {"temperature_limit_c", s.temperature_limit_c},
          {"gpu_utilisation_target_pct", s.gpu_utilisation_target_pct}};
}

json sample_json(const BenchSample& s) {
  return {{"concurrency", s.concurrency},
          {"repetition", s.repetition},
          {"start_s", number_or_null(s.start_s)},
          {"ok", s.ok},
          {"error", s.error},
          {"ttft_s", opt(s.ttft_s)},
          {"itl_mean_s", opt(s.itl_mean_s)},
          {"itl_p90_s", opt(s.itl_p90_s)},
          {"tpot_s", opt(s.tpot_s)},
          {"e2e_s", opt(s.e2e_s)},
          {"output_tokens_per_s", opt(s.output_tokens_per_s)},
          {"decode_tokens_per_s", opt(s.decode_tokens_per_s)},
          {"output_tokens", s.output_tokens},
          {"prompt_tokens", opt(s.prompt_tokens)},
          {"load_s", opt(s.load_s)},
          {"prompt_eval_s", opt(s.prompt_eval_s)},
          {"eval_s", opt(s.eval_s)},
          {"eval_count", opt(s.eval_count)},
          {"total_s", opt(s.total_s)}};
}

json level_json(const BenchLevel& l) {
  return {{"concurrency", l.concurrency},
          {"ttft_s", summary_json(l.ttft_s)},
          {"itl_s", summary_json(l.itl_s)},
          {"tpot_s", summary_json(l.tpot_s)},
          {"e2e_s", summary_json(l.e2e_s)},
          {"output_tokens_per_s", summary_json(l.output_tokens_per_s)},
          {"server_tokens_per_s", summary_json(l.server_tokens_per_s)},
          {"throughput", throughput_json(l.throughput)},
          {"interrupted", l.interrupted}};
}

json model_json(const BenchModel& m) {
  json samples = json::array();
  for (const auto& s : m.samples) {
    samples.push_back(sample_json(s));
  }
  json levels = json::array();
  for (const auto& l : m.levels) {
    levels.push_back(level_json(l));
  }
  json verdicts = json::array();
  for (const auto& v : m.verdicts) {
    verdicts.push_back({{"criterion", v.criterion}, {"outcome", to_string(v.outcome)}, {"detail", v.detail}});
  }
  return {{"model", m.model},
          {"status", to_string(m.status)},
          {"cause", to_string(m.cause)},
          {"reason", m.reason},
          {"planned_ram", opt(m.planned_ram)},
          {"ram_fills_later", m.ram_fills_later},
          {"planned_vram", opt(m.planned_vram)},
          {"load_s", opt(m.load_s)},
          {"loaded_ram", opt(m.loaded_ram)},
          {"server_size", opt(m.server_size)},
          {"server_vram", opt(m.server_vram)},
          {"processor", m.processor},
          {"unload", {{"verdict", to_string(m.unload.verdict)}, {"kept", opt(m.unload.kept)}}},
          {"unload_error", opt(m.unload_error)},
          {"samples", std::move(samples)},
          {"levels", std::move(levels)},
          {"verdicts", std::move(verdicts)}};
}

json point_json(const BenchPoint& p) {
  json gpus = json::array();
  for (const auto& g : p.gpus) {
    gpus.push_back({{"index", g.index},
                    {"vram_used", opt(g.vram_used)},
                    {"utilisation_pct", opt(g.utilisation_pct)},
                    {"temperature_c", opt(g.temperature_c)},
                    {"power_w", opt(g.power_w)},
                    {"throttle_reasons", opt(g.throttle_reasons)}});
  }
  return {{"t_s", number_or_null(p.t_s)},          {"anon", opt(p.anon)},
          {"working_set", opt(p.working_set)},     {"mem_available", opt(p.mem_available)},
          {"swap_in_pages", opt(p.swap_in_pages)}, {"gpus", std::move(gpus)}};
}

// ---------------------------------------------------------------- reading

// Typed fields of one object, named by their path ("models[0].load_s") in the first error.
class Reader {
 public:
  explicit Reader(std::string_view source) : m_source(source) {}

  [[nodiscard]] const std::optional<Error>& error() const { return m_error; }

  void fail_at(const std::string& path, std::string_view what) {
    if (!m_error) {
      m_error = Error{m_source, fmt::format("{}: {}", path, what)};
    }
  }

  // The member, or nullptr when absent or null.
  [[nodiscard]] static const json* member(const json& object, std::string_view key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }

  [[nodiscard]] std::optional<double> opt_number(const json& o, std::string_view key, const std::string& at) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_number()) {
      fail_at(at + std::string(key), "expected a number");
      return std::nullopt;
    }
    return v->get<double>();
  }
  [[nodiscard]] double number(const json& o, std::string_view key, const std::string& at, double fallback = 0) {
    return opt_number(o, key, at).value_or(fallback);
  }

  [[nodiscard]] std::optional<std::uint64_t> opt_unsigned(
      const json& o, std::string_view key, const std::string& at,
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_number_unsigned()) {
      fail_at(at + std::string(key), "expected a whole number from 0");
      return std::nullopt;
    }
    const auto n = v->get<std::uint64_t>();
    if (n > max) {
      fail_at(at + std::string(key), fmt::format("{} is over {}", n, max));
      return std::nullopt;
    }
    return n;
  }
  [[nodiscard]] std::size_t size(const json& o, std::string_view key, const std::string& at, std::size_t fallback = 0) {
    return static_cast<std::size_t>(
        opt_unsigned(o, key, at, std::numeric_limits<std::size_t>::max()).value_or(fallback));
  }
  [[nodiscard]] std::optional<unsigned> opt_uint(const json& o, std::string_view key, const std::string& at) {
    const auto v = opt_unsigned(o, key, at, std::numeric_limits<unsigned>::max());
    return v ? std::optional<unsigned>(static_cast<unsigned>(*v)) : std::nullopt;
  }

  [[nodiscard]] std::optional<std::int64_t> opt_signed(const json& o, std::string_view key, const std::string& at) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (v->is_number_unsigned()) {
      const auto n = v->get<std::uint64_t>();
      if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail_at(at + std::string(key), "out of range");
        return std::nullopt;
      }
      return static_cast<std::int64_t>(n);
    }
    if (!v->is_number_integer()) {
      fail_at(at + std::string(key), "expected a whole number");
      return std::nullopt;
    }
    return v->get<std::int64_t>();
  }

  [[nodiscard]] bool boolean(const json& o, std::string_view key, const std::string& at) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return false;
    }
    if (!v->is_boolean()) {
      fail_at(at + std::string(key), "expected true or false");
      return false;
    }
    return v->get<bool>();
  }

  [[nodiscard]] std::optional<std::string> opt_string(const json& o, std::string_view key, const std::string& at) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail_at(at + std::string(key), "expected a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  [[nodiscard]] std::string string(const json& o, std::string_view key, const std::string& at) {
    return opt_string(o, key, at).value_or("");
  }

  // The member if it is an object; nullptr when absent (or null) or of the wrong type (an error).
  [[nodiscard]] const json* object(const json& o, std::string_view key, const std::string& at) {
    const auto* v = member(o, key);
    if (v != nullptr && !v->is_object()) {
      fail_at(at + std::string(key), "expected an object");
      return nullptr;
    }
    return v;
  }

  // The member if it is an array of at most `max` items; nullptr when absent or wrong (an error).
  [[nodiscard]] const json* array(const json& o, std::string_view key, const std::string& at, std::size_t max) {
    const auto* v = member(o, key);
    if (v == nullptr) {
      return nullptr;
    }
    if (!v->is_array()) {
      fail_at(at + std::string(key), "expected an array");
      return nullptr;
    }
    if (v->size() > max) {
      fail_at(at + std::string(key), fmt::format("{} items, at most {}", v->size(), max));
      return nullptr;
    }
    return v;
  }

  // Each item of the array member, as an object, with its path ("models[2].").
  template <class F>
  void each_object(const json& o, std::string_view key, const std::string& at, std::size_t max, F&& f) {
    const auto* list = array(o, key, at, max);
    if (list == nullptr) {
      return;
    }
    for (std::size_t i = 0; i < list->size() && !m_error; ++i) {
      const auto path = fmt::format("{}{}[{}]", at, key, i);
      const auto& item = (*list)[i];
      if (!item.is_object()) {
        fail_at(path, "expected an object");
        return;
      }
      f(item, path + ".");
    }
  }

  // A name from `names` (the to_string of each enum value, in order).
  template <class E, std::size_t N>
  [[nodiscard]] E choice(const json& o, std::string_view key, const std::string& at, const std::array<E, N>& values,
                         E fallback) {
    const auto text = opt_string(o, key, at);
    if (!text) {
      return fallback;
    }
    for (const auto v : values) {
      if (*text == to_string(v)) {
        return v;
      }
    }
    std::string known;
    for (const auto v : values) {
      known += known.empty() ? "" : ", ";
      known += to_string(v);
    }
    fail_at(at + std::string(key), fmt::format("'{}' is not one of {}", *text, known));
    return fallback;
  }

 private:
  std::string m_source;
  std::optional<Error> m_error;
};

SampleSummary read_summary(Reader& r, const json& o, const std::string& at) {
  SampleSummary s;
  s.count = r.size(o, "count", at);
  s.left_out = r.size(o, "left_out", at);
  s.mean = r.opt_number(o, "mean", at);
  s.median = r.opt_number(o, "median", at);
  s.p90 = r.opt_number(o, "p90", at);
  s.p99 = r.opt_number(o, "p99", at);
  s.min = r.opt_number(o, "min", at);
  s.max = r.opt_number(o, "max", at);
  s.stddev = r.opt_number(o, "stddev", at);
  return s;
}

SampleSummary read_summary_member(Reader& r, const json& o, std::string_view key, const std::string& at) {
  const auto* s = r.object(o, key, at);
  return s != nullptr ? read_summary(r, *s, at + std::string(key) + ".") : SampleSummary{};
}

BenchSettings read_settings(Reader& r, const json& o, const std::string& at) {
  BenchSettings s;
  s.api = r.choice(o, "api", at, std::array{BenchApi::ollama, BenchApi::openai}, s.api);
  s.runs = r.size(o, "runs", at, s.runs);
  s.warmup = r.size(o, "warmup", at, s.warmup);
  s.prompt_tokens = r.size(o, "prompt_tokens", at, s.prompt_tokens);
  s.max_tokens = r.size(o, "max_tokens", at, s.max_tokens);
  if (const auto* levels = r.array(o, "concurrency", at, k_max_bench_levels)) {
    s.concurrency.clear();
    for (std::size_t i = 0; i < levels->size(); ++i) {
      const auto& c = (*levels)[i];
      if (!c.is_number_unsigned()) {
        r.fail_at(fmt::format("{}concurrency[{}]", at, i), "expected a whole number from 0");
        break;
      }
      s.concurrency.push_back(static_cast<std::size_t>(c.get<std::uint64_t>()));
    }
  }
  s.num_ctx = r.opt_unsigned(o, "num_ctx", at);
  s.cooldown_s = r.number(o, "cooldown_s", at, s.cooldown_s);
  s.seed = r.opt_signed(o, "seed", at).value_or(s.seed);
  s.temperature_limit_c = r.opt_uint(o, "temperature_limit_c", at).value_or(s.temperature_limit_c);
  s.gpu_utilisation_target_pct = r.opt_uint(o, "gpu_utilisation_target_pct", at).value_or(s.gpu_utilisation_target_pct);
  return s;
}

BenchSample read_sample(Reader& r, const json& o, const std::string& at) {
  BenchSample s;
  s.concurrency = r.size(o, "concurrency", at, 1);
  s.repetition = r.size(o, "repetition", at);
  s.start_s = r.number(o, "start_s", at);
  s.ok = r.boolean(o, "ok", at);
  s.error = r.string(o, "error", at);
  s.ttft_s = r.opt_number(o, "ttft_s", at);
  s.itl_mean_s = r.opt_number(o, "itl_mean_s", at);
  s.itl_p90_s = r.opt_number(o, "itl_p90_s", at);
  s.tpot_s = r.opt_number(o, "tpot_s", at);
  s.e2e_s = r.opt_number(o, "e2e_s", at);
  s.output_tokens_per_s = r.opt_number(o, "output_tokens_per_s", at);
  s.decode_tokens_per_s = r.opt_number(o, "decode_tokens_per_s", at);
  s.output_tokens = r.opt_unsigned(o, "output_tokens", at).value_or(0);
  s.prompt_tokens = r.opt_signed(o, "prompt_tokens", at);
  s.load_s = r.opt_number(o, "load_s", at);
  s.prompt_eval_s = r.opt_number(o, "prompt_eval_s", at);
  s.eval_s = r.opt_number(o, "eval_s", at);
  s.eval_count = r.opt_signed(o, "eval_count", at);
  s.total_s = r.opt_number(o, "total_s", at);
  return s;
}

BenchLevel read_level(Reader& r, const json& o, const std::string& at) {
  BenchLevel l;
  l.concurrency = r.size(o, "concurrency", at, 1);
  l.ttft_s = read_summary_member(r, o, "ttft_s", at);
  l.itl_s = read_summary_member(r, o, "itl_s", at);
  l.tpot_s = read_summary_member(r, o, "tpot_s", at);
  l.e2e_s = read_summary_member(r, o, "e2e_s", at);
  l.output_tokens_per_s = read_summary_member(r, o, "output_tokens_per_s", at);
  l.server_tokens_per_s = read_summary_member(r, o, "server_tokens_per_s", at);
  if (const auto* t = r.object(o, "throughput", at)) {
    const auto tat = at + "throughput.";
    l.throughput.completed = r.size(*t, "completed", tat);
    l.throughput.failed = r.size(*t, "failed", tat);
    l.throughput.output_tokens = r.opt_unsigned(*t, "output_tokens", tat).value_or(0);
    l.throughput.window_s = r.opt_number(*t, "window_s", tat);
    l.throughput.requests_per_s = r.opt_number(*t, "requests_per_s", tat);
    l.throughput.output_tokens_per_s = r.opt_number(*t, "output_tokens_per_s", tat);
  }
  l.interrupted = r.boolean(o, "interrupted", at);
  return l;
}

BenchModel read_model(Reader& r, const json& o, const std::string& at) {
  BenchModel m;
  m.model = r.string(o, "model", at);
  m.status = r.choice(o, "status", at,
                      std::array{BenchModelStatus::done, BenchModelStatus::skipped, BenchModelStatus::failed,
                                 BenchModelStatus::interrupted},
                      m.status);
  m.cause = r.choice(o, "cause", at,
                     std::array{BenchCause::none, BenchCause::not_installed, BenchCause::no_room,
                                BenchCause::lack_of_memory, BenchCause::in_use, BenchCause::failed},
                     BenchCause::none);
  m.reason = r.string(o, "reason", at);
  m.planned_ram = r.opt_unsigned(o, "planned_ram", at);
  m.ram_fills_later = r.opt_unsigned(o, "ram_fills_later", at).value_or(0);
  m.planned_vram = r.opt_unsigned(o, "planned_vram", at);
  m.load_s = r.opt_number(o, "load_s", at);
  m.loaded_ram = r.opt_unsigned(o, "loaded_ram", at);
  m.server_size = r.opt_unsigned(o, "server_size", at);
  m.server_vram = r.opt_unsigned(o, "server_vram", at);
  m.processor = r.string(o, "processor", at);
  if (const auto* u = r.object(o, "unload", at)) {
    m.unload.verdict = r.choice(*u, "verdict", at + "unload.",
                                std::array{UnloadVerdict::unknown, UnloadVerdict::returned, UnloadVerdict::kept},
                                UnloadVerdict::unknown);
    m.unload.kept = r.opt_unsigned(*u, "kept", at + "unload.");
  }
  m.unload_error = r.opt_string(o, "unload_error", at);
  r.each_object(o, "samples", at, k_max_samples,
                [&](const json& s, const std::string& sat) { m.samples.push_back(read_sample(r, s, sat)); });
  r.each_object(o, "levels", at, k_max_bench_levels,
                [&](const json& l, const std::string& lat) { m.levels.push_back(read_level(r, l, lat)); });
  r.each_object(o, "verdicts", at, k_max_verdicts, [&](const json& v, const std::string& vat) {
    BenchVerdict verdict;
    verdict.criterion = r.string(v, "criterion", vat);
    verdict.outcome =
        r.choice(v, "outcome", vat, std::array{VerdictOutcome::pass, VerdictOutcome::fail, VerdictOutcome::unknown},
                 VerdictOutcome::unknown);
    verdict.detail = r.string(v, "detail", vat);
    m.verdicts.push_back(std::move(verdict));
  });
  return m;
}

BenchPoint read_point(Reader& r, const json& o, const std::string& at) {
  BenchPoint p;
  p.t_s = r.number(o, "t_s", at);
  p.anon = r.opt_unsigned(o, "anon", at);
  p.working_set = r.opt_unsigned(o, "working_set", at);
  p.mem_available = r.opt_unsigned(o, "mem_available", at);
  p.swap_in_pages = r.opt_unsigned(o, "swap_in_pages", at);
  r.each_object(o, "gpus", at, k_max_gpus, [&](const json& g, const std::string& gat) {
    BenchGpuPoint gpu;
    gpu.index = r.opt_uint(g, "index", gat).value_or(0);
    gpu.vram_used = r.opt_unsigned(g, "vram_used", gat);
    gpu.utilisation_pct = r.opt_uint(g, "utilisation_pct", gat);
    gpu.temperature_c = r.opt_uint(g, "temperature_c", gat);
    gpu.power_w = r.opt_number(g, "power_w", gat);
    gpu.throttle_reasons = r.opt_unsigned(g, "throttle_reasons", gat);
    p.gpus.push_back(gpu);
  });
  return p;
}

}  // namespace

std::string iso8601_utc(std::int64_t unix_ms) {
  const auto ms = ((unix_ms % 1000) + 1000) % 1000;
  const auto secs = static_cast<std::time_t>((unix_ms - ms) / 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) {
    return "";
  }
  std::array<char, 32> text{};
  if (std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    return "";
  }
  return fmt::format("{}.{:03}Z", text.data(), ms);
}

json bench_run_json(const BenchRun& run) {
  json models = json::array();
  for (const auto& m : run.models) {
    models.push_back(model_json(m));
  }
  json timeline = json::array();
  for (const auto& p : run.timeline) {
    timeline.push_back(point_json(p));
  }
  json marks = json::array();
  for (const auto& m : run.marks) {
    marks.push_back({{"model", m.model},
                     {"phase", to_string(m.phase)},
                     {"concurrency", m.concurrency},
                     {"start_s", number_or_null(m.start_s)},
                     {"end_s", number_or_null(m.end_s)}});
  }
  return {{"schema", k_bench_schema},
          {"id", run.id},
          {"started_at_ms", run.started_at_ms},
          {"started_at", iso8601_utc(run.started_at_ms)},
          {"duration_s", number_or_null(run.duration_s)},
          {"server", run.server},
          {"url", run.url},
          {"settings", settings_json(run.settings)},
          {"models", std::move(models)},
          {"timeline", std::move(timeline)},
          {"marks", std::move(marks)},
          {"notes", run.notes},
          {"interrupted", run.interrupted}};
}

Result<BenchRun> parse_bench_run(std::string_view text, std::string_view source, BenchParse parse) {
  if (text.size() > k_max_bench_json_bytes) {
    return fail(std::string(source), fmt::format("{} bytes of JSON, more than a benchmark run has ({} at most)",
                                                 text.size(), k_max_bench_json_bytes));
  }
  bool too_deep = false;
  const json::parser_callback_t depth_check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > k_max_depth) {
      too_deep = true;
      return false;
    }
    // The run's "timeline" (depth 1) and each model's "samples" (depth 3): dropped as they are read.
    if (parse == BenchParse::figures_only && event == json::parse_event_t::key &&
        ((depth == 1 && parsed == "timeline") || (depth == 3 && parsed == "samples"))) {
      return false;
    }
    return true;
  };
  const auto doc = json::parse(text, depth_check, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return fail(std::string(source), "not JSON (a benchmark run of memwarden.bench/1 was expected)");
  }
  if (too_deep) {
    return fail(std::string(source), fmt::format("JSON nested deeper than {} levels", k_max_depth));
  }
  if (!doc.is_object()) {
    return fail(std::string(source), "expected a JSON object (a benchmark run)");
  }
  const auto schema = doc.find("schema");
  if (schema == doc.end() || !schema->is_string()) {
    return fail(std::string(source), fmt::format("no \"schema\": not a benchmark run of {}", k_bench_schema));
  }
  if (schema->get<std::string>() != k_bench_schema) {
    return fail(std::string(source), fmt::format("schema '{}' is not {}", schema->get<std::string>(), k_bench_schema));
  }
  Reader r(source);
  BenchRun run;
  run.id = r.opt_signed(doc, "id", "").value_or(0);
  run.started_at_ms = r.opt_signed(doc, "started_at_ms", "").value_or(0);
  run.duration_s = r.number(doc, "duration_s", "");
  run.server = r.string(doc, "server", "");
  run.url = r.string(doc, "url", "");
  if (const auto* s = r.object(doc, "settings", "")) {
    run.settings = read_settings(r, *s, "settings.");
  }
  r.each_object(doc, "models", "", k_max_bench_models,
                [&](const json& m, const std::string& at) { run.models.push_back(read_model(r, m, at)); });
  r.each_object(doc, "timeline", "", k_max_bench_timeline,
                [&](const json& p, const std::string& at) { run.timeline.push_back(read_point(r, p, at)); });
  r.each_object(doc, "marks", "", k_max_marks, [&](const json& m, const std::string& at) {
    BenchMark mark;
    mark.model = r.string(m, "model", at);
    mark.phase = r.choice(
        m, "phase", at,
        std::array{BenchPhase::load, BenchPhase::warmup, BenchPhase::level, BenchPhase::unload, BenchPhase::cooldown},
        BenchPhase::level);
    mark.concurrency = r.size(m, "concurrency", at);
    mark.start_s = r.number(m, "start_s", at);
    mark.end_s = r.number(m, "end_s", at);
    run.marks.push_back(std::move(mark));
  });
  if (const auto* notes = r.array(doc, "notes", "", k_max_notes)) {
    for (std::size_t i = 0; i < notes->size(); ++i) {
      if (!(*notes)[i].is_string()) {
        r.fail_at(fmt::format("notes[{}]", i), "expected a string");
        break;
      }
      run.notes.push_back((*notes)[i].get<std::string>());
    }
  }
  run.interrupted = r.boolean(doc, "interrupted", "");
  if (r.error()) {
    return unexpected(*r.error());
  }
  return run;
}

}  // namespace mw::engine
