#pragma once
// Errors: every failure the user can cause (bad shapes, bad recipe, bad file) is an eat::Error
// whose message names the op, key or file involved. Never assert on user input.
#include <sstream>
#include <stdexcept>
#include <string>

namespace eat {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace eat

#define EAT_CHECK(cond, ...)                         \
  do {                                               \
    if (!(cond)) ::eat::fail(__VA_ARGS__);           \
  } while (0)
