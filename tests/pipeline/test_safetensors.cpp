#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/io/safetensors.h"
#include "base/random.h"
#include "temp_dir.h"

using namespace eat;
using eat::test::TempDir;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file built by hand: the header as given, then data_bytes bytes of data.
std::string hand_built(const TempDir& dir, const std::string& header, size_t data_bytes) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  out += header;
  out.append(data_bytes, '\0');
  static int counter = 0;
  std::string path = dir / ("hand" + std::to_string(counter++) + ".safetensors");
  eat::test::write_text(path, out);
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}
}  // namespace

TEST_CASE("safetensors: round trip of every dtype, layout as the format specifies") {
  TempDir dir("st");
  Generator gen(3);
  Tensor a = Tensor::randn({3, 5}, gen), b = Tensor::randn({7}, gen, 1.0, DType::f64);
  Tensor c = Tensor::from_vector<int64_t>({1, -2, 3}, {3}), d = Tensor::from_vector<int32_t>({9}, {1});
  Tensor e = a.to(DType::bf16);
  save_safetensors(dir / "x.safetensors", {{"layers.0.w", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}}, {{"family", "t"}});

  SafetensorsFile f = load_safetensors(dir / "x.safetensors");
  REQUIRE(f.tensors.size() == 5);
  CHECK(f.tensors[0].first == "layers.0.w");
  CHECK(f.metadata.at("family") == "t");
  CHECK(f.at("layers.0.w").to_f64_vector() == a.to_f64_vector());
  CHECK(f.at("b").to_f64_vector() == b.to_f64_vector());
  CHECK(f.at("c").data<int64_t>()[1] == -2);
  CHECK(f.at("e").dtype() == DType::bf16);
  CHECK(f.at("e").to_f64_vector() == e.to_f64_vector());

  // The raw layout: little-endian header length, JSON padded to 8 bytes, tensors back to back.
  std::string raw = read_all(dir / "x.safetensors");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(raw[i])) << (8 * i);
  CHECK(n % 8 == 0);
  auto header = nlohmann::json::parse(raw.substr(8, n));
  CHECK(header["layers.0.w"]["dtype"] == "F32");
  CHECK(header["layers.0.w"]["shape"] == nlohmann::json({3, 5}));
  CHECK(header["layers.0.w"]["data_offsets"] == nlohmann::json({0, 60}));
  CHECK(header["b"]["data_offsets"] == nlohmann::json({60, 116}));
  CHECK(header["e"]["dtype"] == "BF16");
  CHECK(raw.size() == 8 + n + 60 + 56 + 24 + 4 + 30);
  float first;
  std::memcpy(&first, raw.data() + 8 + n, 4);
  CHECK(first == a.data<float>()[0]);
}

TEST_CASE("safetensors: damaged files are refused with the file and tensor named") {
  TempDir dir("stbad");
  Generator gen(4);
  save_safetensors(dir / "ok.safetensors", {{"w", Tensor::randn({4, 4}, gen)}});
  std::string raw = read_all(dir / "ok.safetensors");
  eat::test::write_text(dir / "cut.safetensors", raw.substr(0, raw.size() - 4));
  CHECK_THROWS_WITH_AS(load_safetensors(dir / "cut.safetensors"), doctest::Contains("tensor 'w' has data offsets [0, 64] outside the file's 60 data bytes"),
                       Error);
  eat::test::write_text(dir / "tiny.safetensors", "abc");
  CHECK_THROWS_WITH_AS(load_safetensors(dir / "tiny.safetensors"), doctest::Contains("too short"), Error);
  std::string bad = raw;
  bad[8] = '#';
  eat::test::write_text(dir / "json.safetensors", bad);
  CHECK_THROWS_WITH_AS(load_safetensors(dir / "json.safetensors"), doctest::Contains("bad JSON header"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(dir / "none.safetensors"), doctest::Contains("cannot open"), Error);
  SafetensorsFile f = load_safetensors(dir / "ok.safetensors");
  CHECK_THROWS_WITH_AS(f.at("v"), doctest::Contains("no tensor named 'v'"), Error);
}

TEST_CASE("safetensors: data offsets must tile the data area in header order, shape x dtype bytes each") {
  TempDir dir("stoffsets");
  auto two = [](const std::string& a, const std::string& b) {
    return R"({"a":{"dtype":"F32","shape":[4],"data_offsets":)" + a + R"(},"b":{"dtype":"F32","shape":[4],"data_offsets":)" +
           b + "}}";
  };
  // The well-formed file loads, and so does a zero-size tensor anywhere on the tiling.
  CHECK(load_safetensors(hand_built(dir, two("[0,16]", "[16,32]"), 32)).tensors.size() == 2);
  CHECK(load_safetensors(hand_built(dir, R"({"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}})", 0)).tensors.size() == 1);
  struct Case {
    std::string header;
    size_t data_bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {two("[16,32]", "[0,16]"), 32,
       "tensor 'b' at [0, 16] is listed after tensor 'a' at [16, 32] but stored before it (swapped data_offsets?)"},
      {two("[0,16]", "[8,24]"), 24, "tensor 'b' at [8, 24] overlaps tensor 'a' at [0, 16]"},
      {two("[0,16]", "[0,16]"), 16, "tensor 'b' at [0, 16] overlaps tensor 'a' at [0, 16]"},
      {two("[0,16]", "[20,36]"), 36, "data bytes [16, 20) belong to no tensor (before tensor 'b')"},
      {two("[0,16]", "[16,32]"), 40, "data bytes [32, 40) belong to no tensor (after the last one)"},
      {two("[4,20]", "[20,36]"), 36, "data bytes [0, 4) belong to no tensor (before tensor 'a')"},
      {two("[0,16]", "[16,32]"), 24, "tensor 'b' has data offsets [16, 32] outside the file's 24 data bytes (truncated?)"},
      {two("[16,0]", "[16,32]"), 32, "tensor 'a' has data offsets [16, 0] that end before they begin"},
      {two("[0,12]", "[12,28]"), 28, "tensor 'a' has 12 bytes but shape [4] of F32 needs 16"},
      {two("[0,16]", "[16,18446744073709551615]"), 32, "tensor 'b': data_offsets value 18446744073709551615 is too large"},
      {R"({"h":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
       "tensor 'h': shape [4294967296, 4294967296]... is too large"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    std::string path = hand_built(dir, c.header, c.data_bytes);
    CHECK(load_error(path) == "safetensors " + path + ": " + c.message);
  }
}

TEST_CASE("safetensors: headers with fields of the wrong type are refused naming the file and tensor") {
  TempDir dir("stfields");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1,2]", "the header is not a JSON object"},
      {R"({"w":[0,4]})", "tensor 'w' is not a JSON object"},
      {R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "tensor 'w' has no 'dtype'"},
      {R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", "tensor 'w': dtype must be a string, got 7"},
      {R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}})", "tensor 'w' has unsupported dtype 'F16'"},
      {R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "tensor 'w' has no 'shape'"},
      {R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", "tensor 'w': shape must be an array, got \"1\""},
      {R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "tensor 'w': shape must be non-negative integers, got -1"},
      {R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "tensor 'w': shape must be non-negative integers, got 1.5"},
      {R"({"w":{"dtype":"F32","shape":[1]}})", "tensor 'w' has no 'data_offsets'"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "tensor 'w': data_offsets must be [begin, end], got [0,4,8]"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"b":0}}})", "tensor 'w': data_offsets must be [begin, end], got {\"b\":0}"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}})", "tensor 'w': data_offsets must be non-negative integers, got \"0\""},
      {R"({"__metadata__":[1],"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "__metadata__ must be an object of strings, got [1]"},
      {R"({"__metadata__":{"step":3},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "__metadata__ 'step' must be a string, got 3"},
  };
  for (const auto& [header, message] : cases) {
    CAPTURE(header);
    std::string path = hand_built(dir, header, 4);
    CHECK(load_error(path) == "safetensors " + path + ": " + message);
  }
  std::string path = hand_built(dir, R"({"w":{"dtype":"F32",)", 4);
  CHECK(load_error(path).rfind("safetensors " + path + ": bad JSON header (", 0) == 0);
}

TEST_CASE("checkpoint directories: atomic writes, half-written ones ignored, pruning") {
  TempDir dir("ckdir");
  std::string run = dir.str();
  auto write_state = [](const std::string& d) { write_file_synced(d + "/state.json", "{}"); };
  write_checkpoint(run, 10, 2, write_state);
  write_checkpoint(run, 20, 2, write_state);
  // A crash mid-save leaves a temporary directory, or a step directory without state.json.
  std::filesystem::create_directories(run + "/checkpoints/.tmp-step_00000030-999");
  std::filesystem::create_directories(run + "/checkpoints/step_00000040");
  auto all = list_checkpoints(run);
  REQUIRE(all.size() == 2);
  CHECK(all.back().step == 20);
  CHECK(all.back().path.find("step_00000020") != std::string::npos);
  // The next save prunes to keep_last complete ones and clears leftovers of interrupted saves.
  write_checkpoint(run, 30, 2, write_state);
  all = list_checkpoints(run);
  REQUIRE(all.size() == 2);
  CHECK(all[0].step == 20);
  CHECK(all[1].step == 30);
  CHECK(!std::filesystem::exists(run + "/checkpoints/.tmp-step_00000030-999"));
  // A save that throws leaves the previous checkpoints untouched.
  CHECK_THROWS(write_checkpoint(run, 50, 2, [](const std::string&) { throw Error("disk full"); }));
  all = list_checkpoints(run);
  REQUIRE(all.size() == 2);
  CHECK(all[1].step == 30);
  // Saving the same step twice replaces it.
  write_checkpoint(run, 30, 2, [](const std::string& d) { write_file_synced(d + "/state.json", "{\"again\":1}"); });
  CHECK(read_all(run + "/checkpoints/step_00000030/state.json") == "{\"again\":1}");
  CHECK(checkpoint_name(7) == "step_00000007");
}
