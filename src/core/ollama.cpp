#include "core/ollama.hpp"

#include <algorithm>

namespace mw {

std::size_t fold_models(std::vector<OllamaModel>& models, std::size_t max) {
  max = std::max<std::size_t>(max, 2);
  if (models.size() <= max) {
    return 0;
  }
  // The largest first; equal sizes by name, so that the same answer always keeps the same models.
  std::stable_sort(models.begin(), models.end(), [](const OllamaModel& a, const OllamaModel& b) {
    return a.size != b.size ? a.size > b.size : a.name < b.name;
  });
  OllamaModel rest;
  std::uint64_t count = 0;
  for (auto it = models.begin() + static_cast<std::ptrdiff_t>(max - 1); it != models.end(); ++it) {
    rest.size += it->size;
    rest.size_vram += it->size_vram;
    count += it->folded > 0 ? it->folded : 1;
  }
  models.erase(models.begin() + static_cast<std::ptrdiff_t>(max - 1), models.end());
  rest.folded = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, UINT32_MAX));
  rest.name = std::string(k_folded_models_name);
  rest.model = rest.name;
  models.push_back(std::move(rest));
  models.shrink_to_fit();
  return count;
}

}  // namespace mw
