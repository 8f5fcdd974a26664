#include "engine/bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "adapters/llm_client.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "model_server.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"

namespace mw::engine {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

bool stopped(const BenchOptions& o) {
  return o.stop != nullptr && o.stop->load();
}

// The timeline: a thread reads the server container's memory, the host's and every GPU once per `every` until
// stopped. Reads never fail the run: a figure that cannot be read is nullopt at that point.
class BenchSampler {
 public:
  BenchSampler(const BenchOptions& o, const MemoryWatch& watch, Clock::time_point origin)
      : m_root(o.plan.root), m_watch(watch), m_origin(origin), m_every(o.sample_every), m_gpus([&] {
          probes::NvmlOptions nvml;
          nvml.library = o.nvml_library;
          return nvml;
        }()) {
    m_thread = std::thread([this] { loop(); });
  }
  BenchSampler(const BenchSampler&) = delete;
  BenchSampler& operator=(const BenchSampler&) = delete;
  ~BenchSampler() { finish(); }

  // Stops the thread (after one last point) and returns the timeline.
  std::vector<BenchPoint> finish() {
    {
      std::lock_guard lock(m_mutex);
      if (m_done) {
        return m_timeline;
      }
      m_done = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable()) {
      m_thread.join();
    }
    add_point(m_timeline, read_point());
    // point_now() may add a point a little after the thread added a later one.
    std::stable_sort(m_timeline.begin(), m_timeline.end(),
                     [](const BenchPoint& a, const BenchPoint& b) { return a.t_s < b.t_s; });
    return m_timeline;
  }

  [[nodiscard]] bool gpus_available() const { return m_gpus.available(); }

  // A point now, besides the 1 Hz ones: at each phase's start and end, so that a phase shorter than a second still
  // has points on the timeline.
  void point_now() {
    auto point = read_point();
    std::lock_guard lock(m_mutex);
    if (!m_done) {
      add_point(m_timeline, std::move(point));
    }
  }

 private:
  void loop() {
    std::unique_lock lock(m_mutex);
    while (!m_done) {
      lock.unlock();
      auto point = read_point();
      lock.lock();
      add_point(m_timeline, std::move(point));
      m_wake.wait_for(lock, m_every, [this] { return m_done; });
    }
  }

  BenchPoint read_point() {
    std::lock_guard lock(m_read_mutex);  // the sampling thread and point_now(): one reader of pswpin at a time
    BenchPoint p;
    p.t_s = seconds_between(m_origin, Clock::now());
    if (const auto memory = m_watch.read()) {
      p.anon = memory->anon;
      p.working_set = memory->working_set();
    }
    if (auto meminfo = probes::read_meminfo(m_root)) {
      p.mem_available = meminfo->mem_available;
    }
    if (auto vmstat = probes::read_vmstat(m_root); vmstat && vmstat->pswpin) {
      if (m_last_pswpin) {
        p.swap_in_pages = *vmstat->pswpin - std::min(*vmstat->pswpin, *m_last_pswpin);
      }
      m_last_pswpin = vmstat->pswpin;
    }
    if (m_gpus.available()) {
      for (const auto& g : m_gpus.read(m_root).gpus) {
        BenchGpuPoint gp;
        gp.index = g.index;
        gp.vram_used = g.memory_used;
        gp.utilisation_pct = g.utilisation_pct;
        gp.temperature_c = g.temperature_c;
        gp.power_w = g.power_w;
        gp.throttle_reasons = g.throttle_reasons;
        p.gpus.push_back(gp);
      }
    }
    return p;
  }

  probes::HostRoot m_root;
  MemoryWatch m_watch;
  Clock::time_point m_origin;
  std::chrono::milliseconds m_every;
  probes::GpuReader m_gpus;
  std::mutex m_read_mutex;
  std::optional<std::uint64_t> m_last_pswpin;  // under m_read_mutex
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_done = false;
  std::vector<BenchPoint> m_timeline;
  std::thread m_thread;
};

double to_seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

// One request's sample and its inter-token gaps, from what the client measured.
struct Measured {
  BenchSample sample;
  std::vector<double> gaps;
  bool not_found = false;  // the server answered 404: it does not have the model
  bool cancelled = false;  // cut by Ctrl-C: neither a completed nor a failed request of the level
};

Measured measure(const adapters::GenerationResult& result, std::chrono::nanoseconds run_origin) {
  Measured m;
  auto& s = m.sample;
  s.start_s = to_seconds(result.sent - run_origin);
  s.ok = result.complete();
  if (result.error) {
    s.error = result.error->line();
    m.not_found = result.error->code == ENOENT;
    m.cancelled = result.error->code == ECANCELED;
  }
  if (auto figures = request_figures(result.times, result.source)) {
    s.ttft_s = figures->ttft_s;
    s.tpot_s = figures->tpot_s;
    s.e2e_s = figures->e2e_s;
    s.output_tokens_per_s = figures->output_tokens_per_s;
    s.decode_tokens_per_s = figures->decode_tokens_per_s;
    s.output_tokens = figures->output_tokens;
    m.gaps = figures->itl_s;
    const auto itl = summarize(figures->itl_s);
    s.itl_mean_s = itl.mean;
    s.itl_p90_s = itl.p90;
  } else if (s.ok) {
    s.ok = false;
    s.error = figures.error().line();
  }
  if (result.stats) {
    const auto& st = *result.stats;
    s.prompt_tokens = st.prompt_tokens;
    s.eval_count = st.output_tokens;
    const auto secs = [](const std::optional<std::chrono::nanoseconds>& d) {
      return d ? std::optional<double>(to_seconds(*d)) : std::nullopt;
    };
    s.load_s = secs(st.load_duration);
    s.prompt_eval_s = secs(st.prompt_eval_duration);
    s.eval_s = secs(st.eval_duration);
    s.total_s = secs(st.total_duration);
  }
  if (s.ok && s.output_tokens == 0) {
    s.ok = false;
    s.error = fmt::format("{}: the answer held no token", result.source);
  }
  return m;
}

// Sends the requests of one phase: `clients` threads, each sending `per_client` requests one after another, each
// with its own prompt (indices from `first_prompt` on). Returns every request's measurement in the order sent per
// client (client 0's, then client 1's, ...).
class PhaseRunner {
 public:
  PhaseRunner(const BenchOptions& o, const adapters::Endpoint& endpoint, std::string model,
              std::chrono::nanoseconds origin, BenchProgress progress)
      : m_options(o),
        m_endpoint(endpoint),
        m_model(std::move(model)),
        m_origin(origin),
        m_progress(std::move(progress)) {}

  std::vector<Measured> run(std::size_t clients, std::size_t per_client, std::size_t first_prompt) {
    std::vector<std::vector<Measured>> by_client(clients);
    m_progress.total = clients * per_client;
    m_progress.done = 0;
    m_progress.failed = 0;
    report();
    std::vector<std::thread> threads;
    threads.reserve(clients);
    for (std::size_t c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        adapters::GenerationLimits limits;
        limits.first_byte_timeout = m_options.request_timeout;
        limits.idle_timeout = m_options.idle_timeout;
        adapters::LlmClient client(m_endpoint, limits);
        for (std::size_t i = 0; i < per_client && !stopped(m_options); ++i) {
          adapters::GenerationRequest request;
          request.api = m_options.settings.api == BenchApi::openai ? adapters::LlmStreamFormat::openai
                                                                   : adapters::LlmStreamFormat::ollama;
          request.model = m_model;
          request.prompt = bench_prompt(first_prompt + c * per_client + i, m_options.settings.prompt_tokens);
          request.max_tokens = static_cast<std::int64_t>(m_options.settings.max_tokens);
          request.seed = m_options.settings.seed;
          if (m_options.settings.num_ctx) {
            request.num_ctx = static_cast<std::int64_t>(*m_options.settings.num_ctx);
          }
          const std::atomic<bool> never{false};
          auto result = client.generate(request, m_options.stop != nullptr ? *m_options.stop : never);
          auto measured = measure(result, m_origin);
          {
            std::lock_guard lock(m_mutex);
            ++m_progress.done;
            if (!measured.sample.ok) {
              ++m_progress.failed;
            } else {
              m_progress.last_tokens_per_s = measured.sample.decode_tokens_per_s;
            }
            report_locked();
          }
          by_client[c].push_back(std::move(measured));
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    std::vector<Measured> all;
    for (std::size_t c = 0; c < clients; ++c) {
      for (std::size_t i = 0; i < by_client[c].size(); ++i) {
        by_client[c][i].sample.repetition = c * per_client + i;
        all.push_back(std::move(by_client[c][i]));
      }
    }
    return all;
  }

 private:
  void report() {
    std::lock_guard lock(m_mutex);
    report_locked();
  }
  void report_locked() {
    if (m_options.progress) {
      m_options.progress(m_progress);
    }
  }

  const BenchOptions& m_options;
  const adapters::Endpoint& m_endpoint;
  std::string m_model;
  std::chrono::nanoseconds m_origin;
  BenchProgress m_progress;
  std::mutex m_mutex;
};

// Sleeps `seconds` unless stopped first.
void wait_unless_stopped(const BenchOptions& o, double seconds) {
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end && !stopped(o)) {
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(100), end - Clock::now()));
  }
}

ModelTestOptions load_options(const BenchOptions& o) {
  ModelTestOptions t;
  t.plan = o.plan;
  t.server = o.server;
  t.load = ModelLoad::load;
  t.after_load = AfterLoad::hand_over;
  t.load_timeout = o.load_timeout;
  t.unload_wait = o.unload_wait;
  t.stop = o.stop;
  return t;
}

std::string pull_hint(const std::string& model, const FoundServer& server) {
  if (server.target && !server.target->container_id.empty()) {
    return fmt::format("`docker exec {} ollama pull {}`", server.target->name, model);
  }
  return fmt::format("`ollama pull {}`", model);
}

}  // namespace

Expected<BenchRun, Error> run_bench(const BenchOptions& options) {
  if (auto ok = check_settings(options.settings); !ok) {
    return unexpected(ok.error());
  }
  const auto test_options = load_options(options);
  auto found = find_server(test_options);
  if (!found) {
    return unexpected(found.error());
  }
  if (!found->target) {
    return unexpected(Error{"--server", "no server to benchmark: give --server NAME|URL"});
  }
  auto endpoint = adapters::parse_endpoint(found->target->url, "--server");
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  BenchRun run;
  run.settings = options.settings;
  run.server = found->target->name;
  run.url = found->target->url;
  run.notes = found->notes;
  const bool ollama = options.settings.api == BenchApi::ollama;
  if (!ollama) {
    run.notes.emplace_back(
        "the OpenAI API has no load call: the load is not timed apart (the first warm-up request carries it) and the "
        "model is not unloaded after");
  }

  auto plan_options = test_options.plan;
  if (!found->discovered && plan_options.ollama_url.empty()) {
    plan_options.ollama_url = found->target->url;
  }
  const auto plan = collect_plan(plan_options);

  // Time 0 of the timeline, the marks and the samples; started_at_ms is the same moment on the wall clock.
  const auto origin = Clock::now();
  const auto origin_ns = adapters::steady_now()();
  run.started_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  BenchSampler sampler(options, found->watch, origin);
  if (!sampler.gpus_available()) {
    run.notes.emplace_back("no NVIDIA GPU (NVML): VRAM, GPU utilisation and temperature are not sampled");
  }
  const auto now_s = [&] { return seconds_between(origin, Clock::now()); };
  // A phase begins and ends with a point on the timeline.
  const auto begin_phase = [&] {
    const double start = now_s();
    sampler.point_now();
    return start;
  };
  const auto end_phase = [&](const std::string& model, BenchPhase phase, std::size_t concurrency, double start) {
    sampler.point_now();
    run.marks.push_back({model, phase, concurrency, start, now_s()});
  };
  std::vector<OllamaModel> loaded_before;
  std::optional<std::vector<OllamaModel>> installed;  // /api/tags, when it answers
  if (ollama) {
    if (auto ps = ps_now(*found)) {
      loaded_before = std::move(*ps);
    }
    adapters::OllamaClient api(*endpoint, std::chrono::seconds(10));
    if (auto tags = api.tags()) {
      installed = std::move(*tags);
    }
  }
  std::optional<std::string> stop_loading;
  std::optional<std::string> cool_after;  // the last model that ran: the GPU cools and the memory settles after it
  const auto& models = options.plan.models;
  for (std::size_t index = 0; index < models.size() && !stopped(options); ++index) {
    const auto& name = models[index];
    BenchModel bm;
    bm.model = name;
    BenchProgress progress;
    progress.model = name;
    progress.model_index = index;
    progress.models = models.size();
    if (cool_after && options.settings.cooldown_s > 0) {
      const double start = begin_phase();
      progress.phase = BenchPhase::cooldown;
      if (options.progress) {
        options.progress(progress);
      }
      wait_unless_stopped(options, options.settings.cooldown_s);
      end_phase(*cool_after, BenchPhase::cooldown, 0, start);
      cool_after.reset();
      if (stopped(options)) {
        break;
      }
    }
    // The plan first: a model that cannot fit is skipped, saying why.
    ModelTestRun check;
    check.model = name;
    for (std::size_t i = 0; i < plan.models.size() && i < plan.plans.size(); ++i) {
      if (plan.models[i].name == name) {
        check.plan = plan.plans[i];
      }
    }
    if (check.plan) {
      fill_fit(check, plan.host);
      bm.planned_ram = check.plan->placement.ram_resident + check.plan->placement.ram_page_cache;
      bm.planned_vram = check.plan->placement.vram;
      bm.ram_fills_later =
          check.plan->placement.kv + std::max(check.plan->placement.graph.full, check.plan->placement.graph.partial);
      if (ollama) {
        if (auto why = refuse_load(test_options, *found, check, loaded_before, stop_loading)) {
          bm.status = BenchModelStatus::skipped;
          bm.reason = check.not_loaded_for_room ? "does not fit: " + *why : *why;
          bm.cause = check.not_loaded_for_room                ? BenchCause::no_room
                     : listed(loaded_before, name) != nullptr ? BenchCause::in_use
                                                              : BenchCause::failed;
          run.models.push_back(std::move(bm));
          continue;
        }
      } else if (!check.ram_fits || !check.vram_fits) {
        bm.status = BenchModelStatus::skipped;
        bm.cause = BenchCause::no_room;
        bm.reason = "does not fit: the plan says it does not fit this host now (the host would swap)";
        run.models.push_back(std::move(bm));
        continue;
      }
    } else {
      const auto it =
          std::find_if(plan.errors.begin(), plan.errors.end(), [&](const Error& e) { return e.source == name; });
      const auto why = it != plan.errors.end() ? it->message : std::string("could not be found or sized");
      if (ollama) {
        // Not loaded without a plan: the plan is what keeps a load from pushing the host into swap.
        bm.status = BenchModelStatus::skipped;
        if (installed && listed(*installed, name) == nullptr) {
          bm.cause = BenchCause::not_installed;
          bm.reason = fmt::format("not installed on {} ({}): {}", run.server, why, pull_hint(name, *found));
        } else {
          bm.cause = BenchCause::failed;
          bm.reason = fmt::format(
              "not loaded: memwarden could not size it ({}), and loads nothing without a plan "
              "(`memwarden plan {}` says more)",
              why, name);
        }
        run.models.push_back(std::move(bm));
        continue;
      }
      run.notes.push_back(fmt::format("{}: no plan ({}): RAM and VRAM are not judged", name, why));
    }

    std::optional<LoadMeasurement> load;
    if (ollama) {
      progress.phase = BenchPhase::load;
      if (options.progress) {
        options.progress(progress);
      }
      const double start = begin_phase();
      load = measure_load(test_options, *found, *check.plan, name, loaded_before);
      end_phase(name, BenchPhase::load, 0, start);
      cool_after = name;
      if (load->error) {
        bm.status = BenchModelStatus::failed;
        bm.cause = load->model_missing    ? BenchCause::not_installed
                   : load->lack_of_memory ? BenchCause::lack_of_memory
                                          : BenchCause::failed;
        bm.reason = load->model_missing ? fmt::format("not installed on {}: {}", run.server, pull_hint(name, *found))
                                        : "the load failed: " + *load->error;
        if (load->lack_of_memory) {
          stop_loading = "the last load failed for lack of memory";
        }
        run.models.push_back(std::move(bm));
        continue;
      }
      bm.load_s = load->load_seconds;
      bm.loaded_ram = load->checks.empty() ? std::nullopt : load->checks.front().measured;
      bm.server_size = load->ps_size;
      bm.server_vram = load->ps_vram;
      bm.processor = load->processor;
    }

    cool_after = name;
    if (options.settings.warmup > 0 && !stopped(options)) {
      progress.phase = BenchPhase::warmup;
      const double start = begin_phase();
      PhaseRunner warm(options, *endpoint, name, origin_ns, progress);
      const auto warmed = warm.run(1, options.settings.warmup, 0);
      end_phase(name, BenchPhase::warmup, 0, start);
      if (!warmed.empty() &&
          std::none_of(warmed.begin(), warmed.end(), [](const Measured& m) { return m.sample.ok; })) {
        bm.status = BenchModelStatus::failed;
        bm.cause = warmed.back().not_found ? BenchCause::not_installed : BenchCause::failed;
        bm.reason = !warmed.back().not_found ? "every warm-up request failed: " + warmed.back().sample.error
                    : ollama ? fmt::format("not installed on {}: {} ({})", run.server, pull_hint(name, *found),
                                           warmed.back().sample.error)
                             : fmt::format("not found on {}: {}", run.server, warmed.back().sample.error);
      }
    }
    std::size_t next_prompt = options.settings.warmup;
    for (const auto concurrency : options.settings.concurrency) {
      if (bm.status == BenchModelStatus::failed || stopped(options)) {
        break;
      }
      progress.phase = BenchPhase::level;
      progress.concurrency = concurrency;
      const double start = begin_phase();
      PhaseRunner level(options, *endpoint, name, origin_ns, progress);
      auto measured = level.run(concurrency, options.settings.runs, next_prompt);
      next_prompt += concurrency * options.settings.runs;
      end_phase(name, BenchPhase::level, concurrency, start);
      // The gaps are summarized per level and not kept: a level's ITL summary pools its requests' gaps.
      std::vector<BenchSample> samples;
      std::vector<std::vector<double>> gaps;
      for (auto& m : measured) {
        if (m.cancelled) {
          continue;  // cut by Ctrl-C: not a request of the level
        }
        m.sample.concurrency = concurrency;
        samples.push_back(std::move(m.sample));
        gaps.push_back(std::move(m.gaps));
      }
      auto summary = summarize_level(concurrency, samples, gaps);
      summary.interrupted = stopped(options);
      bm.levels.push_back(std::move(summary));
      bm.samples.insert(bm.samples.end(), std::make_move_iterator(samples.begin()),
                        std::make_move_iterator(samples.end()));
    }
    if (bm.status != BenchModelStatus::failed && !bm.samples.empty() &&
        std::none_of(bm.samples.begin(), bm.samples.end(), [](const BenchSample& s) { return s.ok; })) {
      bm.status = BenchModelStatus::failed;
      bm.cause = BenchCause::failed;
      bm.reason = "every request failed: " + bm.samples.back().error;
    }
    if (stopped(options)) {
      bm.status = BenchModelStatus::interrupted;
      bm.reason = "interrupted (Ctrl-C): the figures are of the requests that completed";
    }
    if (load) {
      // Unloaded on every way out, Ctrl-C included: memwarden loaded it.
      progress.phase = BenchPhase::unload;
      if (options.progress) {
        options.progress(progress);
      }
      const double start = begin_phase();
      unload_and_check(test_options, *found, name, *load);
      end_phase(name, BenchPhase::unload, 0, start);
      bm.unload = load->unload;
      bm.unload_error = load->unload_error;
      if (load->unload_error || load->unload.verdict == UnloadVerdict::kept) {
        stop_loading = "the last model's memory did not come back";
      }
    }
    run.models.push_back(std::move(bm));
  }
  run.timeline = sampler.finish();
  for (auto& m : run.models) {
    if (m.status != BenchModelStatus::skipped && !(m.status == BenchModelStatus::failed && m.samples.empty())) {
      m.verdicts = judge_model(m, run.timeline, run.marks, options.settings);
    }
  }
  run.interrupted = stopped(options);
  if (run.interrupted) {
    for (std::size_t i = run.models.size(); i < models.size(); ++i) {
      run.notes.push_back(fmt::format("{}: not run (interrupted)", models[i]));
    }
  }
  run.duration_s = now_s();
  return run;
}

BenchExit bench_exit(const BenchRun& run) {
  if (run.interrupted) {
    return BenchExit::interrupted;
  }
  bool failed = false;
  bool missing = false;
  bool no_room = false;
  for (const auto& m : run.models) {
    switch (m.cause) {
      case BenchCause::not_installed:
        missing = true;
        break;
      case BenchCause::no_room:
      case BenchCause::lack_of_memory:
        no_room = true;
        break;
      case BenchCause::in_use:
      case BenchCause::failed:
        failed = true;
        break;
      case BenchCause::none:
        break;
    }
    // A model that may still be loaded, or whose server kept its memory, fails the run whatever else it did.
    failed = failed || m.unload_error.has_value() || m.unload.verdict == UnloadVerdict::kept;
    for (const auto& s : m.samples) {
      failed = failed || !s.ok;
    }
    for (const auto& v : m.verdicts) {
      failed = failed || v.outcome == VerdictOutcome::fail;
    }
  }
  if (failed) {
    return BenchExit::failed;
  }
  if (missing) {
    return BenchExit::source_missing;
  }
  return no_room ? BenchExit::not_possible : BenchExit::passed;
}

}  // namespace mw::engine
