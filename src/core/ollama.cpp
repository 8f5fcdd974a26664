#include "core/ollama.hpp"

#include <algorithm>

namespace mw {

namespace {

void cut(std::string& text) {
  if (text.size() > k_max_model_detail_bytes) {
    text.resize(k_max_model_detail_bytes);
    text.shrink_to_fit();
  }
}

bool overlong(const OllamaModel& m) {
  return m.name.size() > k_max_model_name_bytes || m.model.size() > k_max_model_name_bytes;
}

}  // namespace

std::size_t fold_models(std::vector<OllamaModel>& models, std::size_t max) {
  max = std::max<std::size_t>(max, 2);
  for (auto& m : models) {
    cut(m.digest);
    cut(m.expires_at);
    cut(m.family);
    cut(m.parameter_size);
    cut(m.quantization_level);
  }
  const bool any_overlong = std::any_of(models.begin(), models.end(), overlong);
  if (models.size() <= max && !any_overlong) {
    return 0;
  }
  // Overlong names last, then the largest first; equal sizes by name, so that the same answer always keeps
  // the same models.
  std::stable_sort(models.begin(), models.end(), [](const OllamaModel& a, const OllamaModel& b) {
    if (overlong(a) != overlong(b)) {
      return overlong(b);
    }
    return a.size != b.size ? a.size > b.size : a.name < b.name;
  });
  const auto kept_end =
      std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(models.size() <= max ? models.size() : max - 1),
                               std::find_if(models.begin(), models.end(), overlong) - models.begin());
  OllamaModel rest;
  std::uint64_t count = 0;
  for (auto it = models.begin() + kept_end; it != models.end(); ++it) {
    rest.size += it->size;
    rest.size_vram += it->size_vram;
    count += it->folded > 0 ? it->folded : 1;
  }
  models.erase(models.begin() + kept_end, models.end());
  rest.folded = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, UINT32_MAX));
  rest.name = std::string(k_folded_models_name);
  rest.model = rest.name;
  models.push_back(std::move(rest));
  models.shrink_to_fit();
  return count;
}

std::size_t model_count(const std::vector<OllamaModel>& models) {
  std::size_t n = 0;
  for (const auto& m : models) {
    n += m.folded > 0 ? m.folded : 1;
  }
  return n;
}

}  // namespace mw
