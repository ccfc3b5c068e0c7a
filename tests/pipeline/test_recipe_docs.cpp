// recipes/README.md documents every family's [model.<family>] keys with the table rendered from
// the family's manifest (option_table_markdown): this test fails when the two drift apart, and
// prints the table to paste.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "framework/model.h"

using namespace eat;

namespace {

std::string read_readme() {
  std::ifstream in(std::string(EAT_SOURCE_DIR) + "/recipes/README.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The table under the heading "### `[model.<family>]`": its lines from "| key" to the first line
// that is not a table row.
std::string table_after(const std::string& text, size_t heading) {
  size_t start = text.find("\n| key", heading);
  if (start == std::string::npos) return "";
  ++start;
  size_t end = start;
  while (end < text.size() && text[end] == '|') end = text.find('\n', end) + 1;
  return text.substr(start, end - start);
}

}  // namespace

TEST_CASE("recipes/README.md: each family's key table is the one rendered from its manifest") {
  const std::string readme = read_readme();
  const std::string marker = "### `[model.";
  std::set<std::string> documented;
  for (size_t at = readme.find(marker); at != std::string::npos; at = readme.find(marker, at + 1)) {
    const size_t name_start = at + marker.size();
    const std::string name = readme.substr(name_start, readme.find(']', name_start) - name_start);
    documented.insert(name);
    CAPTURE(name);
    const FamilySpec* family = find_family(name);
    REQUIRE_MESSAGE(family, "recipes/README.md documents [model.", name, "], which is no registered family");
    const std::string want = option_table_markdown(*family);
    CHECK_MESSAGE(table_after(readme, at) == want, "the table for [model.", name, "] should read:\n", want);
  }
  for (const std::string& name : family_names()) CHECK_MESSAGE(documented.count(name), "recipes/README.md has no [model.", name, "] table");
}

TEST_CASE("option_table_markdown: types, defaults and choices as the README writes them") {
  FamilySpec f;
  f.options = {{"width", int64_t{0}, "hidden width"},
               {"eps", 1e-5, "epsilon"},
               {"theta", 10000.0, "base"},
               {"tie", false, "tied"},
               {"kernel", std::string("a"), "the kernel", {{"a", "fast"}, {"b", ""}, {"c", "reference"}}},
               {"layers", IntList{1, 6}, "some layers"},
               {"none", IntList{}, "no layers"}};
  CHECK(option_table_markdown(f) ==
        "| key | type | default | meaning |\n|---|---|---|---|\n"
        "| `width` | integer | 0 | hidden width |\n"
        "| `eps` | float | 1e-5 | epsilon |\n"
        "| `theta` | float | 10000.0 | base |\n"
        "| `tie` | bool | false | tied |\n"
        "| `kernel` | string | `\"a\"` | the kernel: `\"a\"` (fast), `\"b\"` or `\"c\"` (reference) |\n"
        "| `layers` | integer list | `[1, 6]` | some layers |\n"
        "| `none` | integer list | `[]` | no layers |\n");
  CHECK(choice_list(f.options[4]) == "\"a\", \"b\" or \"c\"");
}
