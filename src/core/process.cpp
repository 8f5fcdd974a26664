#include "core/process.hpp"

#include <algorithm>
#include <numeric>

namespace mw {

void bound_argv(std::vector<std::string>& argv) {
  if (argv.size() > k_max_argv_kept) {
    argv.resize(k_max_argv_kept);
  }
  argv.shrink_to_fit();
  for (auto& arg : argv) {
    if (arg.size() > k_max_arg_bytes) {
      arg.resize(k_max_arg_bytes);
      arg.shrink_to_fit();
    }
  }
}

std::size_t keep_largest_processes(std::vector<ProcessInfo>& processes, std::size_t max) {
  if (processes.size() <= max) {
    return 0;
  }
  const auto memory = [](const ProcessInfo& p) { return p.rss_anon_bytes.value_or(p.rss_bytes.value_or(0)); };
  std::vector<std::size_t> order(processes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return memory(processes[a]) > memory(processes[b]); });
  order.resize(max);
  std::sort(order.begin(), order.end());
  std::vector<ProcessInfo> kept;
  kept.reserve(max);
  for (const auto i : order) {
    kept.push_back(std::move(processes[i]));
  }
  const std::size_t dropped = processes.size() - max;
  processes = std::move(kept);
  return dropped;
}

}  // namespace mw
