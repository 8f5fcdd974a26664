#include "core/ollama_name.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <tuple>

namespace mw {

namespace {

enum class Part { host, ns, model, tag };

const char* part_name(Part part) {
  switch (part) {
    case Part::host:
      return "host";
    case Part::ns:
      return "namespace";
    case Part::model:
      return "model";
    case Part::tag:
      return "tag";
  }
  return "part";
}

bool is_alnum_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The text for messages: printable ASCII as it is, anything else as \xNN, cut at 100 characters.
std::string printable(std::string_view text) {
  constexpr std::size_t k_max = 100;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < k_max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > k_max) {
    out += "...";
  }
  return out;
}

// What is wrong with one part, following name.go isValidPart; nullopt when it is fine.
std::optional<std::string> check_part(Part part, std::string_view s) {
  const auto max = part == Part::host ? k_ollama_max_host_length : k_ollama_max_part_length;
  if (s.empty()) {
    return fmt::format("the {} is empty", part_name(part));
  }
  if (s.size() > max) {
    return fmt::format("the {} is {} characters long (Ollama allows at most {})", part_name(part), s.size(), max);
  }
  if (!is_alnum_or_underscore(s.front())) {
    return fmt::format("the {} \"{}\" must start with a letter, a digit or '_'", part_name(part), printable(s));
  }
  for (const char c : s.substr(1)) {
    const bool ok =
        is_alnum_or_underscore(c) || c == '-' || (c == '.' && part != Part::ns) || (c == ':' && part == Part::host);
    if (!ok) {
      const auto shown = printable(std::string_view(&c, 1));
      return fmt::format("the {} \"{}\" holds '{}', which Ollama does not allow there", part_name(part), printable(s),
                         shown);
    }
  }
  return std::nullopt;
}

Result<OllamaModelName> checked(OllamaModelName name, const std::string& source) {
  const std::pair<Part, const std::string*> parts[] = {
      {Part::host, &name.host}, {Part::ns, &name.ns}, {Part::model, &name.model}, {Part::tag, &name.tag}};
  for (const auto& [part, value] : parts) {
    if (auto complaint = check_part(part, *value)) {
      return fail(source, std::move(*complaint));
    }
  }
  return name;
}

}  // namespace

std::string OllamaModelName::display() const {
  if (!mw::equals_ignoring_case(host, k_ollama_default_host)) {
    return fmt::format("{}/{}/{}:{}", host, ns, model, tag);
  }
  if (!mw::equals_ignoring_case(ns, k_ollama_default_namespace)) {
    return fmt::format("{}/{}:{}", ns, model, tag);
  }
  return fmt::format("{}:{}", model, tag);
}

std::string OllamaModelName::full() const {
  return fmt::format("{}/{}/{}:{}", host, ns, model, tag);
}

std::string OllamaModelName::manifest_path() const {
  return fmt::format("manifests/{}/{}/{}/{}", host, ns, model, tag);
}

bool OllamaModelName::equals_ignoring_case(const OllamaModelName& other) const {
  return same_model_ignoring_case(other) && mw::equals_ignoring_case(tag, other.tag);
}

bool OllamaModelName::same_model_ignoring_case(const OllamaModelName& other) const {
  return mw::equals_ignoring_case(host, other.host) && mw::equals_ignoring_case(ns, other.ns) &&
         mw::equals_ignoring_case(model, other.model);
}

Result<OllamaModelName> parse_ollama_model_name(std::string_view text) {
  const auto source = fmt::format("model name \"{}\"", printable(text));
  if (text.empty()) {
    return fail("model name", "empty");
  }
  if (text.find('@') != std::string_view::npos) {
    return fail(source, "a digest suffix (@sha256:...) is not supported; give the name and tag (model:tag)");
  }
  bool had_scheme = false;
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (text.starts_with(scheme)) {
      text.remove_prefix(scheme.size());
      had_scheme = true;
      break;
    }
  }

  OllamaModelName name;
  // "/" may not appear in a tag, so a ':' after the last '/' starts the tag; one before it is a port.
  const auto colon = text.rfind(':');
  const auto slash = text.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    name.tag = std::string(text.substr(colon + 1));
    text = text.substr(0, colon);
    if (name.tag.empty()) {
      return fail(source, "nothing follows ':' (the tag is empty)");
    }
  }

  std::vector<std::string_view> parts;
  for (;;) {
    const auto cut = text.find('/');
    parts.push_back(text.substr(0, cut));
    if (cut == std::string_view::npos) {
      break;
    }
    text.remove_prefix(cut + 1);
  }
  if (parts.size() > 3) {
    return fail(source, "too many '/'-separated parts (at most host/namespace/model:tag)");
  }
  if (had_scheme && parts.size() != 3) {
    return fail(source, "a name given as a URL needs host/namespace/model");
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) {
      const Part kinds3[] = {Part::host, Part::ns, Part::model};
      const Part kinds2[] = {Part::ns, Part::model};
      const auto part = parts.size() == 3 ? kinds3[i] : parts.size() == 2 ? kinds2[i] : Part::model;
      return fail(source, fmt::format("the {} is empty", part_name(part)));
    }
  }
  name.model = std::string(parts.back());
  name.ns = parts.size() >= 2 ? std::string(parts[parts.size() - 2]) : std::string(k_ollama_default_namespace);
  name.host = parts.size() == 3 ? std::string(parts[0]) : std::string(k_ollama_default_host);
  if (name.tag.empty()) {
    name.tag = std::string(k_ollama_default_tag);
  }
  return checked(std::move(name), source);
}

Result<OllamaModelName> ollama_model_name_from_parts(std::string_view host, std::string_view ns, std::string_view model,
                                                     std::string_view tag) {
  OllamaModelName name{std::string(host), std::string(ns), std::string(model), std::string(tag)};
  const auto source =
      fmt::format("model name \"{}/{}/{}:{}\"", printable(host), printable(ns), printable(model), printable(tag));
  return checked(std::move(name), source);
}

std::vector<OllamaModelName> suggest_ollama_names(const OllamaModelName& wanted,
                                                  const std::vector<OllamaModelName>& available, std::size_t limit) {
  // Rank 0: the same model, another tag. Rank 1 + d: a model name within d edits (or containing the
  // wanted name, or contained in it), across namespaces and hosts.
  const std::size_t max_edits = std::max<std::size_t>(2, wanted.model.size() / 3);
  const std::string wanted_model = ascii_lower(wanted.model);

  std::vector<std::tuple<std::size_t, std::string, const OllamaModelName*>> ranked;
  for (const auto& candidate : available) {
    if (candidate.equals_ignoring_case(wanted)) {
      continue;
    }
    std::optional<std::size_t> rank;
    if (candidate.same_model_ignoring_case(wanted)) {
      rank = 0;
    } else {
      const std::string model = ascii_lower(candidate.model);
      const auto distance = edit_distance_ignoring_case(model, wanted_model);
      if (distance <= max_edits) {
        rank = 1 + distance;
      } else if (model.find(wanted_model) != std::string::npos || wanted_model.find(model) != std::string::npos) {
        rank = 1 + max_edits;
      }
    }
    if (rank) {
      ranked.emplace_back(*rank, candidate.display(), &candidate);
    }
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
  });
  std::vector<OllamaModelName> out;
  for (const auto& entry : ranked) {
    if (out.size() == limit) {
      break;
    }
    const auto* name = std::get<2>(entry);
    const bool duplicate = std::any_of(out.begin(), out.end(), [&](const auto& n) { return n == *name; });
    if (!duplicate) {
      out.push_back(*name);
    }
  }
  return out;
}

}  // namespace mw
