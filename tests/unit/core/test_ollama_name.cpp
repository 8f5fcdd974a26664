#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ollama_name.hpp"
#include "core/text.hpp"

using namespace mw;

namespace {

OllamaModelName parsed(std::string_view text) {
  auto name = parse_ollama_model_name(text);
  EXPECT_TRUE(name) << text << ": " << name.error().line();
  return name ? *name : OllamaModelName{};
}

std::vector<std::string> displays(const std::vector<OllamaModelName>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) {
    out.push_back(n.display());
  }
  return out;
}

}  // namespace

TEST(OllamaName, LibraryModelWithTag) {
  const auto name = parsed("deepseek-coder:33b");
  EXPECT_EQ(name, (OllamaModelName{"registry.ollama.ai", "library", "deepseek-coder", "33b"}));
  EXPECT_EQ(name.display(), "deepseek-coder:33b");
  EXPECT_EQ(name.full(), "registry.ollama.ai/library/deepseek-coder:33b");
  EXPECT_EQ(name.manifest_path(), "manifests/registry.ollama.ai/library/deepseek-coder/33b");
}

TEST(OllamaName, TagDefaultsToLatest) {
  const auto name = parsed("llama3.1");
  EXPECT_EQ(name.model, "llama3.1");
  EXPECT_EQ(name.tag, "latest");
  EXPECT_EQ(name.display(), "llama3.1:latest");
  EXPECT_EQ(name.manifest_path(), "manifests/registry.ollama.ai/library/llama3.1/latest");
}

TEST(OllamaName, UserNamespace) {
  const auto name = parsed("user/model:tag");
  EXPECT_EQ(name, (OllamaModelName{"registry.ollama.ai", "user", "model", "tag"}));
  EXPECT_EQ(name.display(), "user/model:tag");
  EXPECT_EQ(name.manifest_path(), "manifests/registry.ollama.ai/user/model/tag");
}

TEST(OllamaName, HuggingFaceName) {
  const auto name = parsed("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(name, (OllamaModelName{"hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M"}));
  EXPECT_EQ(name.display(), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(name.manifest_path(), "manifests/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M");
}

TEST(OllamaName, FullyQualifiedDefaultHostDisplaysShort) {
  const auto name = parsed("registry.ollama.ai/library/mistral:7b");
  EXPECT_EQ(name, parsed("mistral:7b"));
  EXPECT_EQ(name.display(), "mistral:7b");
  // Ollama compares the defaults without regard to case when shortening.
  EXPECT_EQ(parsed("Registry.Ollama.AI/Library/mistral:7b").display(), "mistral:7b");
}

TEST(OllamaName, HostWithPortAndScheme) {
  const auto name = parsed("localhost:5000/team/coder:v1");
  EXPECT_EQ(name, (OllamaModelName{"localhost:5000", "team", "coder", "v1"}));
  EXPECT_EQ(name.manifest_path(), "manifests/localhost:5000/team/coder/v1");
  const auto port_no_tag = parsed("localhost:5000/team/coder");
  EXPECT_EQ(port_no_tag.host, "localhost:5000");
  EXPECT_EQ(port_no_tag.tag, "latest");
  EXPECT_EQ(parsed("https://registry.ollama.ai/library/mistral:7b"), parsed("mistral:7b"));
  EXPECT_FALSE(parse_ollama_model_name("https://mistral:7b"));
}

TEST(OllamaName, CaseIsKeptAndComparedIgnoringIt) {
  const auto upper = parsed("Mistral:7B");
  EXPECT_EQ(upper.model, "Mistral");
  EXPECT_EQ(upper.tag, "7B");
  EXPECT_TRUE(upper.equals_ignoring_case(parsed("mistral:7b")));
  EXPECT_FALSE(upper.equals_ignoring_case(parsed("mistral:7b-instruct")));
  EXPECT_TRUE(upper.same_model_ignoring_case(parsed("mistral:7b-instruct")));
  EXPECT_FALSE(upper.same_model_ignoring_case(parsed("user/mistral:7b")));
}

TEST(OllamaName, RefusesNamesThatCouldEscapeTheStore) {
  for (const std::string_view bad : {"",
                                     "../../etc/passwd",
                                     "..",
                                     ".",
                                     "../x:y",
                                     "a/../b",
                                     "x:..",
                                     "x:../../y",
                                     "/etc/passwd",
                                     "model:ta/g",
                                     "a/b/c/d",
                                     "a//b",
                                     "host//model",
                                     "model:",
                                     ":tag",
                                     "./model",
                                     "model/",
                                     "-model",
                                     ".hidden",
                                     "name space",
                                     "model:tag\n",
                                     "ns.with.dot/model",
                                     "m\\odel",
                                     "model:t:g"}) {
    const auto name = parse_ollama_model_name(bad);
    EXPECT_FALSE(name) << "accepted \"" << bad << "\" as " << (name ? name->full() : "");
    if (!name) {
      const auto line = name.error().line();
      EXPECT_EQ(line.find('\n'), std::string::npos) << line;
      EXPECT_FALSE(name.error().message.empty());
    }
  }
}

TEST(OllamaName, RefusesAnEmbeddedNul) {
  EXPECT_FALSE(parse_ollama_model_name(std::string_view("library/model\0x", 15)));
}

TEST(OllamaName, ErrorsSayWhichPartIsWrong) {
  auto traversal = parse_ollama_model_name("../../etc/passwd");
  ASSERT_FALSE(traversal);
  EXPECT_EQ(traversal.error().line(),
            "model name \"../../etc/passwd\": too many '/'-separated parts (at most "
            "host/namespace/model:tag)");
  auto dots = parse_ollama_model_name("../model");
  ASSERT_FALSE(dots);
  EXPECT_EQ(dots.error().message, "the namespace \"..\" must start with a letter, a digit or '_'");
  auto tag = parse_ollama_model_name("model:");
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().message, "nothing follows ':' (the tag is empty)");
  auto control = parse_ollama_model_name("model:tag\n");
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().line(),
            "model name \"model:tag\\x0a\": the tag \"tag\\x0a\" holds '\\x0a', which Ollama "
            "does not allow there");
  auto digest = parse_ollama_model_name("mistral@sha256:" + std::string(64, 'a'));
  ASSERT_FALSE(digest);
  EXPECT_NE(digest.error().message.find("digest"), std::string::npos);
}

TEST(OllamaName, LengthLimits) {
  EXPECT_TRUE(parse_ollama_model_name(std::string(80, 'm') + ":" + std::string(80, 't')));
  EXPECT_FALSE(parse_ollama_model_name(std::string(81, 'm')));
  EXPECT_FALSE(parse_ollama_model_name("m:" + std::string(81, 't')));
  EXPECT_FALSE(parse_ollama_model_name(std::string(81, 'n') + "/m"));
  EXPECT_TRUE(parse_ollama_model_name(std::string(350, 'h') + "/n/m"));
  const auto long_host = parse_ollama_model_name(std::string(351, 'h') + "/n/m");
  ASSERT_FALSE(long_host);
  EXPECT_EQ(long_host.error().message, "the host is 351 characters long (Ollama allows at most 350)");
  // The source quotes at most 100 characters of the name.
  EXPECT_LT(long_host.error().source.size(), 120U);
}

TEST(OllamaName, FromManifestPathParts) {
  const auto name = ollama_model_name_from_parts("registry.ollama.ai", "library", "qwen2.5", "7b");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->display(), "qwen2.5:7b");
  EXPECT_FALSE(ollama_model_name_from_parts("registry.ollama.ai", "..", "x", "y"));
  EXPECT_FALSE(ollama_model_name_from_parts("registry.ollama.ai", "library", "x", ""));
  EXPECT_FALSE(ollama_model_name_from_parts("registry.ollama.ai", "library", "x", "a/b"));
}

TEST(OllamaName, EditDistance) {
  EXPECT_EQ(edit_distance_ignoring_case("", ""), 0U);
  EXPECT_EQ(edit_distance_ignoring_case("abc", ""), 3U);
  EXPECT_EQ(edit_distance_ignoring_case("kitten", "sitting"), 3U);
  EXPECT_EQ(edit_distance_ignoring_case("Mistral", "mistral"), 0U);
  EXPECT_EQ(edit_distance_ignoring_case("deepseek-coda", "deepseek-coder"), 2U);
}

TEST(OllamaName, SuggestsOtherTagsFirstThenCloseNames) {
  const std::vector<OllamaModelName> available = {
      parsed("deepseek-coder:6.7b"), parsed("deepseek-coder:1.3b"), parsed("deepseek-coder-v2:16b"),
      parsed("llama3.1:8b"),         parsed("mistral:7b"),          parsed("someone/deepseek-coder:33b"),
  };
  EXPECT_EQ(displays(suggest_ollama_names(parsed("deepseek-coder:33b"), available, 4)),
            (std::vector<std::string>{"deepseek-coder:1.3b", "deepseek-coder:6.7b", "someone/deepseek-coder:33b",
                                      "deepseek-coder-v2:16b"}));
  EXPECT_EQ(displays(suggest_ollama_names(parsed("mistrl"), available)), (std::vector<std::string>{"mistral:7b"}));
  EXPECT_EQ(displays(suggest_ollama_names(parsed("llama3"), available)), (std::vector<std::string>{"llama3.1:8b"}));
  EXPECT_TRUE(suggest_ollama_names(parsed("qwen2.5:7b"), available).empty());
  // The wanted name itself (in another case) is not a suggestion.
  EXPECT_EQ(displays(suggest_ollama_names(parsed("Mistral:7B"), available)), std::vector<std::string>{});
}
