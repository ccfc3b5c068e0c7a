// doctest's main, with the CPU float mode the eat binary runs with.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "framework/float_mode.h"

int main(int argc, char** argv) {
  eat::flush_denormals_to_zero();
  return doctest::Context(argc, argv).run();
}
