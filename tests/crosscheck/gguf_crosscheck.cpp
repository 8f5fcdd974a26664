// memwarden's GGUF reader (mw::probes::read_gguf) against an independent parser: @huggingface/gguf, run with node
// on tests/crosscheck/dump.mjs. The files are the test writer's: the real-model presets (llama-shaped ones, sliding
// windows, experts, latent attention, a CLIP projector) with their full vocabularies (sparse: the tensor data is a
// hole) and one file with every value type and nested arrays. Every
// metadata key, type, value and array element, and every tensor info, must be the same in both answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/gguf.hpp"
#include "gguf_writer.hpp"
#include "probes/gguf_file.hpp"
#include "test_support.hpp"

using namespace mw;
using nlohmann::json;
using test::GgufPreset;
using test::TempDir;

namespace fs = std::filesystem;

namespace {

// ---- our answer in dump.mjs's encoding (see its header)

json encode_number(double v) {
  constexpr double k_max_safe = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER
  if (std::isfinite(v) && std::trunc(v) == v && std::fabs(v) <= k_max_safe && !(v == 0.0 && std::signbit(v))) {
    return static_cast<std::int64_t>(v);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(std::bit_cast<std::uint64_t>(v)));
  return json{{"f64", hex}};
}

json encode_bigint(std::uint64_t v) {
  return json{{"bigint", std::to_string(v)}};
}

json encode_bigint(std::int64_t v) {
  return json{{"bigint", std::to_string(v)}};
}

template <class T>
json encode_scalar(const T& v) {
  if constexpr (std::is_same_v<T, std::uint64_t> || std::is_same_v<T, std::int64_t>) {
    return encode_bigint(v);
  } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                       std::is_same_v<T, std::string_view>) {
    return v;
  } else {
    static_assert(std::is_arithmetic_v<T>);
    return encode_number(static_cast<double>(v));
  }
}

json encode_array(const GgufArray& array);

json encode_value(const GgufValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          return encode_array(v);
        } else {
          return encode_scalar(v);
        }
      },
      value.value);
}

json encode_array(const GgufArray& array) {
  json out = json::array();
  std::visit(
      [&out](const auto& items) {
        out.get_ref<json::array_t&>().reserve(items.size());
        for (const auto& item : items) {
          using T = std::decay_t<decltype(item)>;
          if constexpr (std::is_same_v<T, GgufArray>) {
            out.push_back(encode_array(item));
          } else if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::uint64_t> ||
                               std::is_same_v<T, std::int64_t> || std::is_arithmetic_v<T>) {
            out.push_back(encode_scalar(item));
          } else {
            out.push_back(encode_scalar(static_cast<bool>(item)));  // std::vector<bool>'s proxy
          }
        }
      },
      array.items);
  return out;
}

// ---- the comparison

// The first few mismatches, and how many there were.
class Mismatches {
 public:
  void add(std::string what) {
    ++m_count;
    if (m_first.size() < k_shown) {
      m_first.push_back(std::move(what));
    }
  }
  [[nodiscard]] std::size_t count() const { return m_count; }
  [[nodiscard]] const std::vector<std::string>& first() const { return m_first; }
  [[nodiscard]] std::string report() const {
    std::string out = std::to_string(m_count) + " mismatch(es) between memwarden and @huggingface/gguf:\n";
    for (const auto& m : m_first) {
      out += "  " + m + "\n";
    }
    if (m_count > m_first.size()) {
      out += "  ... and " + std::to_string(m_count - m_first.size()) + " more\n";
    }
    return out;
  }

 private:
  static constexpr std::size_t k_shown = 20;
  std::vector<std::string> m_first;
  std::size_t m_count = 0;
};

std::string show(const json& j) {
  auto text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 120) {
    text = text.substr(0, 117) + "...";
  }
  return text;
}

// Compares two values in dump.mjs's encoding, element by element; `where` names the value in reports.
void diff(const json& ours, const json& theirs, const std::string& where, Mismatches& out) {
  if (ours.is_array() && theirs.is_array()) {
    if (ours.size() != theirs.size()) {
      out.add(where + ": memwarden has " + std::to_string(ours.size()) + " elements, @huggingface/gguf " +
              std::to_string(theirs.size()));
      return;
    }
    for (std::size_t i = 0; i < ours.size(); ++i) {
      diff(ours[i], theirs[i], where + "[" + std::to_string(i) + "]", out);
    }
    return;
  }
  if (ours != theirs) {
    out.add(where + ": memwarden " + show(ours) + ", @huggingface/gguf " + show(theirs));
  }
}

// theirs[name]; null when theirs is no object or has no such member.
const json& field(const json& theirs, const char* name) {
  static const json null;
  if (!theirs.is_object()) {
    return null;
  }
  const auto it = theirs.find(name);
  return it != theirs.end() ? *it : null;
}

// theirs[name] when it is an array; an empty array otherwise.
const json& member(const json& theirs, const char* name) {
  static const json empty = json::array();
  const json& found = field(theirs, name);
  return found.is_array() ? found : empty;
}

void diff_field(const json& ours, const json& theirs, const char* name, const std::string& where, Mismatches& out) {
  diff(ours, field(theirs, name), where + " " + name, out);
}

// One file: ours (read_gguf's answer) against theirs (one element of dump.mjs's output).
Mismatches compare(const GgufFile& ours, const json& theirs) {
  Mismatches out;
  diff_field(ours.version, theirs, "version", "header", out);
  diff_field(encode_bigint(std::uint64_t{ours.metadata.size()}), theirs, "kv_count", "header", out);
  diff_field(encode_bigint(ours.tensor_count()), theirs, "tensor_count", "header", out);
  diff_field(encode_bigint(ours.data_offset), theirs, "data_offset", "header", out);

  std::unordered_map<std::string, const json*> by_key;
  for (const auto& entry : member(theirs, "metadata")) {
    const json& key = field(entry, "key");
    if (!key.is_string() || !by_key.emplace(key.get<std::string>(), &entry).second) {
      out.add("metadata: @huggingface/gguf gives a bad or repeated key " + show(key));
    }
  }
  for (const auto& kv : ours.metadata) {
    const auto where = "metadata \"" + kv.key + "\"";
    const auto it = by_key.find(kv.key);
    if (it == by_key.end()) {
      out.add(where + ": missing from @huggingface/gguf's answer");
      continue;
    }
    const json& entry = *it->second;
    by_key.erase(it);
    diff_field(static_cast<std::uint32_t>(kv.value.type()), entry, "type", where, out);
    if (const auto* array = kv.value.as_array()) {
      diff_field(static_cast<std::uint32_t>(array->element_type()), entry, "element_type", where, out);
    } else if (!field(entry, "element_type").is_null()) {
      out.add(where + ": @huggingface/gguf gives an element type for a " + to_string(kv.value.type()));
    }
    diff(encode_value(kv.value), field(entry, "value"), kv.key, out);
  }
  for (const auto& [key, entry] : by_key) {
    out.add("metadata \"" + key + "\": only in @huggingface/gguf's answer");
  }

  const json& theirs_tensors = member(theirs, "tensors");
  if (theirs_tensors.size() != ours.tensors.size()) {
    out.add("tensors: memwarden has " + std::to_string(ours.tensors.size()) + ", @huggingface/gguf " +
            std::to_string(theirs_tensors.size()));
  }
  for (std::size_t i = 0; i < std::min(ours.tensors.size(), theirs_tensors.size()); ++i) {
    const auto& t = ours.tensors[i];
    const auto where = "tensor " + std::to_string(i) + " \"" + t.name + "\"";
    json dims = json::array();
    for (const auto d : t.dims) {
      dims.push_back(encode_bigint(d));
    }
    diff_field(t.name, theirs_tensors[i], "name", where, out);
    diff_field(dims, theirs_tensors[i], "dims", where, out);
    diff_field(t.type, theirs_tensors[i], "type", where, out);
    diff_field(encode_bigint(t.offset), theirs_tensors[i], "offset", where, out);
  }
  return out;
}

// ---- running the other parser

// dump.mjs's answer for one file; throws (with node's stderr) when it fails.
json dump_with_node(const fs::path& gguf) {
  const char* node = std::getenv("MW_CROSSCHECK_NODE");  // another node by hand (README.md)
  const auto result = test::run_process(
      {node != nullptr && *node != '\0' ? node : MW_NODE, std::string(MW_CROSSCHECK_DIR) + "/dump.mjs", gguf.string()});
  if (result.exit_code != 0) {
    throw std::runtime_error("node dump.mjs " + gguf.string() + " exited with " + std::to_string(result.exit_code) +
                             ": " + result.err + " (is the crosscheck.npm test's `npm ci` done?)");
  }
  const auto files = json::parse(result.out);
  if (!files.is_array() || files.size() != 1) {
    throw std::runtime_error("dump.mjs printed no single file: " + show(files));
  }
  return files[0];
}

GgufFile read_ours(const fs::path& path) {
  auto file = probes::read_gguf(path);
  if (!file) {
    throw std::runtime_error(file.error().line());
  }
  return std::move(*file);
}

// Writes `spec`, reads it with both parsers and expects the same answer.
void expect_same(const test::GgufSpec& spec, const std::string& name) {
  const TempDir dir;
  const auto path = dir.path() / (name + ".gguf");
  test::write_gguf(path, spec);
  const auto ours = read_ours(path);
  ASSERT_EQ(ours.metadata.size(), spec.metadata.size());
  ASSERT_EQ(ours.tensor_count(), spec.tensors.size());
  const auto theirs = dump_with_node(path);
  const auto mismatches = compare(ours, theirs);
  EXPECT_EQ(mismatches.count(), 0U) << name << ": " << mismatches.report();
}

// Every value type and nested arrays, four tensors of different types and ranks.
test::GgufSpec every_value_type_spec(std::uint32_t version) {
  test::GgufSpec spec;
  spec.version = version;
  if (version == 3) {
    spec.set_alignment(64);
  }
  for (auto& kv : test::gguf_every_value_type()) {
    spec.add(std::move(kv.key), std::move(kv.value));
  }
  spec.tensors = {
      {"vector.f32", {7}, ggml_id(GgmlType::f32), std::nullopt},
      {"matrix.q4_k", {256, 3}, ggml_id(GgmlType::q4_k), std::nullopt},
      {"cube.q8_0", {64, 2, 5}, ggml_id(GgmlType::q8_0), std::nullopt},
      {"rank4.f16", {2, 3, 4, 5}, ggml_id(GgmlType::f16), std::nullopt},
  };
  return spec;
}

void expect_preset(GgufPreset preset) {
  expect_same(test::gguf_preset(preset, test::GgufVocab::full), test::to_string(preset));
}

json& metadata_value(json& file, const std::string& key) {
  for (auto& entry : file["metadata"]) {
    if (entry["key"] == key) {
      return entry["value"];
    }
  }
  throw std::runtime_error("no " + key + " in dump.mjs's answer");
}

// A copy of `theirs` changed by `change` must give exactly one mismatch, and it names `where`.
template <class Change>
void expect_one_mismatch(const GgufFile& ours, const json& theirs, Change change, const std::string& where) {
  SCOPED_TRACE(where);
  json changed = theirs;
  change(changed);
  const auto mismatches = compare(ours, changed);
  ASSERT_EQ(mismatches.count(), 1U) << mismatches.report();
  EXPECT_TRUE(mismatches.first()[0].starts_with(where)) << mismatches.report();
}

}  // namespace

TEST(gguf, every_value_type) {
  expect_same(every_value_type_spec(3), "every-value-type");
}

TEST(gguf, every_value_type_v2) {
  expect_same(every_value_type_spec(2), "every-value-type-v2");
}

TEST(gguf, llama31_8b_q4_k_m) {
  expect_preset(GgufPreset::llama31_8b_q4_k_m);
}

TEST(gguf, llama31_70b_q4_k_m) {
  expect_preset(GgufPreset::llama31_70b_q4_k_m);
}

TEST(gguf, codellama_34b_q4_0) {
  expect_preset(GgufPreset::codellama_34b_q4_0);
}

TEST(gguf, deepseek_coder_33b_q4_0) {
  expect_preset(GgufPreset::deepseek_coder_33b_q4_0);
}

TEST(gguf, qwen25_7b_q4_k_m) {
  expect_preset(GgufPreset::qwen25_7b_q4_k_m);
}

TEST(gguf, mistral_7b_q4_0) {
  expect_preset(GgufPreset::mistral_7b_q4_0);
}

TEST(gguf, gemma3_12b_q4_k_m) {
  expect_preset(GgufPreset::gemma3_12b_q4_k_m);
}

TEST(gguf, qwen3_30b_a3b_q4_k_m) {
  expect_preset(GgufPreset::qwen3_30b_a3b_q4_k_m);
}

TEST(gguf, gpt_oss_20b_mxfp4) {
  expect_preset(GgufPreset::gpt_oss_20b_mxfp4);
}

TEST(gguf, deepseek_v2_lite_q4_k_m) {
  expect_preset(GgufPreset::deepseek_v2_lite_q4_k_m);
}

TEST(gguf, deepseek_v2_lite_mla_q4_k_m) {
  expect_preset(GgufPreset::deepseek_v2_lite_mla_q4_k_m);
}

TEST(gguf, gemma2_9b_q4_0) {
  expect_preset(GgufPreset::gemma2_9b_q4_0);
}

TEST(gguf, clip_llava_projector_f16) {
  expect_preset(GgufPreset::clip_llava_projector_f16);
}

TEST(gguf, mixtral_8x7b_q4_k_m) {
  expect_preset(GgufPreset::mixtral_8x7b_q4_k_m);
}

TEST(gguf, command_r7b_q4_k_m) {
  expect_preset(GgufPreset::command_r7b_q4_k_m);
}

// The check can fail: one changed value, type, key or tensor field in node's answer is reported, by name.
TEST(gguf, comparator_reports_each_changed_field) {
  const TempDir dir;
  const auto path = dir.path() / "every-value-type.gguf";
  test::write_gguf(path, every_value_type_spec(3));
  const auto ours = read_ours(path);
  const auto theirs = dump_with_node(path);
  ASSERT_EQ(compare(ours, theirs).count(), 0U) << compare(ours, theirs).report();

  expect_one_mismatch(
      ours, theirs, [](json& j) { metadata_value(j, "test.array.nested")[1][0][0] = "y"; },
      "test.array.nested[1][0][0]");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) {
        metadata_value(j, "test.array.nested")[0][1].push_back(json{{"bigint", "0"}});
      },
      "test.array.nested[0][1]");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) {
        metadata_value(j, "test.float32") = encode_number(static_cast<double>(std::nextafter(1.5F, 2.0F)));
      },
      "test.float32");
  expect_one_mismatch(
      ours, theirs, [](json& j) { metadata_value(j, "test.float64") = encode_number(std::nextafter(-2.25e300, 0.0)); },
      "test.float64");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) { metadata_value(j, "test.uint64") = encode_bigint(std::uint64_t{17999999999999999999ULL}); },
      "test.uint64");
  expect_one_mismatch(
      ours, theirs, [](json& j) { metadata_value(j, "test.uint32") = encode_bigint(std::uint64_t{4000000000U}); },
      "test.uint32");  // the right number, as the wrong kind (a BigInt)
  expect_one_mismatch(
      ours, theirs, [](json& j) { metadata_value(j, "test.array.bool")[2] = false; }, "test.array.bool[2]");
  expect_one_mismatch(
      ours, theirs, [](json& j) { metadata_value(j, "test.string") = "hello, GGUF"; }, "test.string");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) {
        for (auto& entry : j["metadata"]) {
          if (entry["key"] == "test.int16") {
            entry["type"] = 2;  // uint16
          }
        }
      },
      "metadata \"test.int16\" type");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) {
        for (auto& entry : j["metadata"]) {
          if (entry["key"] == "test.array.float64") {
            entry["element_type"] = 6;  // float32
          }
        }
      },
      "metadata \"test.array.float64\" element_type");
  expect_one_mismatch(
      ours, theirs,
      [](json& j) {
        auto& metadata = j["metadata"];
        for (auto it = metadata.begin(); it != metadata.end(); ++it) {
          if ((*it)["key"] == "test.int8") {
            metadata.erase(it);
            return;
          }
        }
      },
      "metadata \"test.int8\": missing");
  expect_one_mismatch(
      ours, theirs, [](json& j) { j["tensors"][2]["dims"][1] = encode_bigint(std::uint64_t{3}); },
      "tensor 2 \"cube.q8_0\" dims");
  expect_one_mismatch(
      ours, theirs, [](json& j) { j["tensors"][1]["type"] = ggml_id(GgmlType::q5_k); },
      "tensor 1 \"matrix.q4_k\" type");
  expect_one_mismatch(
      ours, theirs, [](json& j) { j["tensors"][3]["offset"] = encode_bigint(std::uint64_t{1}); },
      "tensor 3 \"rank4.f16\" offset");
}

// The check can fail end to end: node reading a file whose one string differs from ours is caught.
TEST(gguf, comparator_reports_a_changed_file) {
  const TempDir dir;
  auto spec = every_value_type_spec(3);
  const auto path = dir.path() / "original.gguf";
  test::write_gguf(path, spec);
  const auto ours = read_ours(path);

  for (auto& kv : spec.metadata) {
    if (kv.key == "test.array.string") {
      kv.value = GgufValue{GgufArray{GgufStrings{"a", "", "tokenz"}}};
    }
  }
  const auto changed = dir.path() / "changed.gguf";
  test::write_gguf(changed, spec);
  const auto mismatches = compare(ours, dump_with_node(changed));
  ASSERT_EQ(mismatches.count(), 1U) << mismatches.report();
  EXPECT_EQ(mismatches.first()[0], "test.array.string[2]: memwarden \"tokens\", @huggingface/gguf \"tokenz\"");
}
