#include "framework/config/recipe.h"

#include <cmath>

// Debian ships the header as toml++/toml.h; upstream single-header installs have toml.hpp.
#if __has_include(<toml++/toml.hpp>)
#include <toml++/toml.hpp>
#else
#include <toml++/toml.h>
#endif

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"
#include "framework/optim/schedule.h"
#include "framework/storage.h"

namespace eat {

namespace {

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::string value_text(const toml::node& n) {
  std::ostringstream os;
  n.visit([&](const auto& v) { os << toml::toml_formatter{v}; });
  return os.str();
}

// Reads typed keys from the parsed table, remembering which keys exist so that anything else in
// the file is reported as unknown. Every error starts with "file:line:col: key".
class Reader {
 public:
  Reader(const toml::table& root, std::string source, std::map<std::string, std::string> overrides)
      : root_(root), source_(std::move(source)), overrides_(std::move(overrides)) {}

  std::string where(const std::string& key) const { return where(key, root_.at_path(key).node(), key); }
  // The place of node n (a key's value, or an element of it) and the name to print for it.
  std::string where(const std::string& key, const toml::node* n, const std::string& name) const {
    // A key set (or whose table was created) by an override: its text says it all.
    for (const auto& [path, arg] : overrides_)
      if (path == key || path.rfind(key + ".", 0) == 0) return "--set " + arg + ": " + name;
    if (!n) return source_ + ": " + name;
    const auto& src = n->source();
    std::string file = src.path ? *src.path : source_;
    return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) + ": " + name;
  }

  template <typename... Args>
  [[noreturn]] void error(const std::string& key, const Args&... what) const {
    fail(where(key), ": ", what...);
  }

  const toml::node* node(const std::string& key) {
    known_.insert(key);
    return root_.at_path(key).node();
  }

  void get(const std::string& key, int64_t& out, bool required = false) {
    const toml::node* n = node(key);
    if (!n) return missing(key, required);
    if (!n->is_integer()) error(key, "expected an integer, got ", type_name(*n), " (", value_text(*n), ")");
    out = n->as_integer()->get();
  }
  void get(const std::string& key, double& out, bool required = false) {
    const toml::node* n = node(key);
    if (!n) return missing(key, required);
    if (n->is_integer()) out = static_cast<double>(n->as_integer()->get());
    else if (n->is_floating_point()) out = n->as_floating_point()->get();
    else error(key, "expected a number, got ", type_name(*n), " (", value_text(*n), ")");
    // No key of a recipe means anything by inf or nan (TOML spells them): refused at the key.
    if (!std::isfinite(out)) error(key, "= ", value_text(*n), ": must be a finite number");
  }
  void get(const std::string& key, bool& out, bool required = false) {
    const toml::node* n = node(key);
    if (!n) return missing(key, required);
    if (!n->is_boolean()) error(key, "expected true or false, got ", type_name(*n), " (", value_text(*n), ")");
    out = n->as_boolean()->get();
  }
  void get(const std::string& key, std::string& out, bool required = false) {
    const toml::node* n = node(key);
    if (!n) return missing(key, required);
    if (!n->is_string()) error(key, "expected a string, got ", type_name(*n), " (", value_text(*n), ")");
    out = n->as_string()->get();
  }
  void get(const std::string& key, uint64_t& out, bool required = false) {
    int64_t v = static_cast<int64_t>(out);
    get(key, v, required);
    if (v < 0) error(key, "must be >= 0, got ", v);
    out = static_cast<uint64_t>(v);
  }
  // An array of integers, e.g. taylor_layers = [1, 6]; a bad element is named with its index.
  void get(const std::string& key, IntList& out, bool required = false) {
    const toml::node* n = node(key);
    if (!n) return missing(key, required);
    const toml::array* arr = n->as_array();
    if (!arr) error(key, "expected an array of integers like [1, 6], got ", type_name(*n), " (", value_text(*n), ")");
    out.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = (*arr)[i];
      if (!e.is_integer())
        fail(where(key, &e, key + "[" + std::to_string(i) + "]"), ": expected an integer, got ", type_name(e), " (",
             value_text(e), ")");
      out.push_back(e.as_integer()->get());
    }
  }
  // A two-element numeric array, e.g. betas = [0.9, 0.95].
  void get_pair(const std::string& key, double& a, double& b) {
    const toml::node* n = node(key);
    if (!n) return;
    const toml::array* arr = n->as_array();
    if (!arr || arr->size() != 2 || !(*arr)[0].is_number() || !(*arr)[1].is_number())
      error(key, "expected two numbers like [0.9, 0.95], got ", value_text(*n));
    a = (*arr)[0].value<double>().value();
    b = (*arr)[1].value<double>().value();
    if (!std::isfinite(a) || !std::isfinite(b)) error(key, "= ", value_text(*n), ": must be finite numbers");
  }

  template <typename T>
  void require(bool ok, const std::string& key, const T& value, const std::string& rule) const {
    if (!ok) error(key, "= ", value, ": ", rule);
  }

  // Every key in the file that nothing read: an error naming it and the keys of its section.
  void reject_unknown(const std::string& family) const {
    for (const auto& [section, value] : root_) {
      std::string s(section.str());
      const toml::table* t = value.as_table();
      bool section_known = false;
      for (const std::string& k : known_)
        if (k.rfind(s + ".", 0) == 0) section_known = true;
      if (!t || !section_known) fail(where(s), ": unknown section (known: ", list_sections(), ")");
      for (const auto& [key, sub] : *t) {
        std::string full = s + "." + std::string(key.str());
        if (known_.count(full)) continue;
        if (s == "model" && sub.is_table()) {
          if (std::string(key.str()) != family)
            fail(where(full), ": table [", full, "] does not match model.family = \"", family, "\"");
          for (const auto& [fk, fv] : *sub.as_table()) {
            std::string ffull = full + "." + std::string(fk.str());
            if (!known_.count(ffull)) fail(where(ffull), ": unknown key for family '", family, "' (known: ", list_keys(full), ")");
          }
          continue;
        }
        fail(where(full), ": unknown key (known in [", s, "]: ", list_keys(s), ")");
      }
    }
  }

 private:
  void missing(const std::string& key, bool required) const {
    if (required) fail(source_, ": ", key, " is required");
  }
  std::string list_keys(const std::string& section) const {
    std::string out;
    for (const std::string& k : known_)
      if (k.rfind(section + ".", 0) == 0 && k.find('.', section.size() + 1) == std::string::npos)
        out += (out.empty() ? "" : ", ") + k.substr(section.size() + 1);
    return out;
  }
  std::string list_sections() const {
    std::set<std::string> s;
    for (const std::string& k : known_) s.insert(k.substr(0, k.find('.')));
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return out;
  }

  const toml::table& root_;
  std::string source_;
  std::map<std::string, std::string> overrides_;  // key path -> the override's text
  std::set<std::string> known_;
};

// Applies one "section.key=value" override. The value is parsed as TOML; if that fails it is
// taken as a bare string, so `--set run.name=baseline` needs no quotes.
std::string apply_override(toml::table& root, const std::string& arg) {
  size_t eq = arg.find('=');
  EAT_CHECK(eq != std::string::npos && eq > 0, "--set ", arg, ": expected section.key=value");
  std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
  std::string source = "--set " + arg;
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value, source);
  } catch (const toml::parse_error&) {
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    parsed = toml::parse("v = " + quoted + "\"", source);
  }
  toml::table* t = &root;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
    std::string part = key.substr(start, dot - start);
    toml::node* n = t->get(part);
    if (!n) n = &t->insert_or_assign(part, toml::table{}).first->second;
    EAT_CHECK(n->is_table(), "--set ", arg, ": '", key.substr(0, dot), "' is not a table");
    t = n->as_table();
  }
  EAT_CHECK(start > 0, "--set ", arg, ": expected section.key=value (the key needs its section)");
  t->insert_or_assign(key.substr(start), *parsed.get("v"));
  return key;
}

// Moves every renamed key of the recipe's family to its new name; where both are set, the new one
// wins.
void migrate_renamed_keys(toml::table& root) {
  const std::optional<std::string> family = root.at_path("model.family").value<std::string>();
  const FamilySpec* spec = family ? find_family(*family) : nullptr;
  toml::table* options = spec ? root.at_path("model." + *family).as_table() : nullptr;
  if (!options) return;
  for (const auto& [old_name, new_name] : spec->renamed_options) {
    const toml::node* old_node = options->get(old_name);
    if (!old_node) continue;
    if (!options->contains(new_name)) old_node->visit([&](const auto& value) { options->insert_or_assign(new_name, value); });
    options->erase(old_name);
  }
}

void read_family_options(Reader& r, ModelConfig& model) {
  const FamilySpec* spec = find_family(model.family);
  if (!spec) {
    r.error("model.family", "unknown model family \"", model.family, "\" (known: ", family_list(), ")");
  }
  const std::string table = "model." + model.family + ".";
  for (const auto& [old_name, new_name] : spec->renamed_options)
    if (r.node(table + old_name)) r.error(table + old_name, "renamed to ", new_name, " (write ", table + new_name, ")");
  for (const OptionSpec& o : spec->options) {
    std::string key = table + o.name;
    OptionValue v = o.default_value;
    std::visit([&](auto& x) { r.get(key, x); }, v);
    if (const auto* s = std::get_if<std::string>(&v); s && !o.choices.empty()) {
      bool allowed = false;
      for (const OptionChoice& c : o.choices) allowed |= c.value == *s;
      if (!allowed) r.error(key, "= \"", *s, "\": must be ", choice_list(o));
    }
    if (const auto* n = std::get_if<int64_t>(&v); n && o.min_value && *n < *o.min_value)
      r.error(key, o.name, " must be >= ", *o.min_value);
    if (const auto* x = std::get_if<double>(&v); x && o.float_floor) {
      if (o.floor_excluded && !(*x > *o.float_floor)) r.error(key, "= ", *x, ": must be > ", *o.float_floor);
      if (!o.floor_excluded && !(*x >= *o.float_floor)) r.error(key, "= ", *x, ": must be >= ", *o.float_floor);
    }
    model.options.set(o.name, v);
  }
}

// Where a family check's message points: the option its message starts with ("window_layers = [2]:
// ..."), else the family's whole table.
std::string check_subject(const FamilySpec& spec, const std::string& why) {
  const std::string table = "model." + spec.name;
  for (const OptionSpec& o : spec.options)
    if (why.rfind(o.name, 0) == 0 && (why.size() == o.name.size() || why[o.name.size()] == ' ' || why[o.name.size()] == ':'))
      return table + "." + o.name;
  return table;
}

}  // namespace

void Recipe::check_world(int world_size) const {
  EAT_CHECK(world_size % parallel.sp == 0, source, ": parallel.sp = ", parallel.sp, " does not divide the world size ",
            world_size, " (dp = world / sp must be whole)");
  int64_t dp = data_parallel(world_size);
  EAT_CHECK(train.global_batch % dp == 0, source, ": train.global_batch = ", train.global_batch,
            " does not split over ", dp, " data-parallel ranks");
  int64_t local = train.global_batch / dp;
  EAT_CHECK(train.micro_batch == 0 || local % train.micro_batch == 0, source, ": train.micro_batch = ",
            train.micro_batch, " does not divide the per-rank batch ", local, " (global_batch / dp)");
  EAT_CHECK(data.seq_len % parallel.sp == 0, source, ": data.seq_len = ", data.seq_len,
            " does not split over parallel.sp = ", parallel.sp, " ranks");
}

Recipe parse_recipe(const std::string& text, const std::string& source, const std::vector<std::string>& overrides,
                    RenamedKeys renamed) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail(source, ":", e.source().begin.line, ":", e.source().begin.column, ": TOML syntax error: ", e.description());
  }
  if (renamed == RenamedKeys::migrate) migrate_renamed_keys(root);
  std::map<std::string, std::string> overridden;
  for (const std::string& o : overrides) overridden[apply_override(root, o)] = o;

  Recipe r;
  r.source = source;
  Reader in(root, source, overridden);
  in.get("run.name", r.run.name, true);
  in.get("run.out_dir", r.run.out_dir);
  in.get("run.seed", r.run.seed);
  // One plain path component: the run directory is out_dir/name, never out_dir itself or outside it.
  in.require(!r.run.name.empty() && r.run.name.find('/') == std::string::npos && r.run.name.find('\\') == std::string::npos &&
                 r.run.name != "." && r.run.name != "..",
             "run.name", r.run.name, "must be a plain name: not empty, not \".\" or \"..\", without '/' or '\\'");

  ModelConfig& m = r.model;
  in.get("model.family", m.family, true);
  in.get("model.d_model", m.d_model, true);
  in.get("model.n_layers", m.n_layers, true);
  in.get("model.n_heads", m.n_heads, true);
  in.get("model.vocab_size", m.vocab_size);
  in.get("model.init_std", m.init_std);
  in.require(m.d_model > 0, "model.d_model", m.d_model, "must be positive");
  in.require(m.n_layers > 0, "model.n_layers", m.n_layers, "must be positive");
  in.require(m.n_heads > 0 && m.d_model % m.n_heads == 0, "model.n_heads", m.n_heads,
             "must be positive and divide model.d_model = " + std::to_string(m.d_model));
  in.require(m.vocab_size > 1, "model.vocab_size", m.vocab_size, "must be at least 2");
  in.require(m.init_std > 0, "model.init_std", m.init_std, "must be positive");
  read_family_options(in, m);

  in.get("data.train", r.data.train, true);
  in.get("data.val", r.data.val);
  in.get("data.seq_len", r.data.seq_len);
  in.require(!r.data.train.empty(), "data.train", "\"\"", "must name a token file");
  in.require(r.data.seq_len > 0, "data.seq_len", r.data.seq_len, "must be positive");

  in.get("train.steps", r.train.steps, true);
  in.get("train.global_batch", r.train.global_batch);
  in.get("train.micro_batch", r.train.micro_batch);
  in.get("train.grad_clip", r.train.grad_clip);
  in.get("train.device", r.train.device);
  in.get("train.precision", r.train.precision);
  in.get("train.tf32", r.train.tf32);
  r.train.device_where = in.where("train.device");
  in.require(r.train.steps > 0, "train.steps", r.train.steps, "must be positive");
  in.require(r.train.global_batch > 0, "train.global_batch", r.train.global_batch, "must be positive");
  in.require(r.train.micro_batch >= 0, "train.micro_batch", r.train.micro_batch, "must be >= 0 (0: no accumulation)");
  in.require(r.train.grad_clip >= 0, "train.grad_clip", r.train.grad_clip, "must be >= 0 (0: no clipping)");
  in.require(r.train.device == "cpu" || r.train.device == "cuda", "train.device", r.train.device,
             "must be \"cpu\" or \"cuda\"");
  if (r.train.device == "cpu")
    in.require(r.train.precision == "f32" || r.train.precision == "f64", "train.precision", r.train.precision,
               "must be \"f32\" or \"f64\" with train.device = \"cpu\" (bf16 needs train.device = \"cuda\")");
  else
    in.require(r.train.precision == "f32" || r.train.precision == "bf16", "train.precision", r.train.precision,
               "must be \"f32\" or \"bf16\" with train.device = \"cuda\" (the CUDA kernels have no f64)");
  if (r.train.tf32 && !(r.train.device == "cuda" && r.train.precision == "f32"))
    in.error("train.tf32", "= true: TF32 matmuls apply to train.device = \"cuda\" with train.precision = \"f32\" only, "
             "this recipe has device \"", r.train.device, "\" and precision \"", r.train.precision, "\"");

  in.get("optimizer.lr", r.optimizer.lr);
  in.get_pair("optimizer.betas", r.optimizer.beta1, r.optimizer.beta2);
  in.get("optimizer.eps", r.optimizer.eps);
  in.get("optimizer.weight_decay", r.optimizer.weight_decay);
  in.require(r.optimizer.lr > 0, "optimizer.lr", r.optimizer.lr, "must be positive");
  if (!(r.optimizer.beta1 >= 0 && r.optimizer.beta1 < 1 && r.optimizer.beta2 >= 0 && r.optimizer.beta2 < 1))
    in.error("optimizer.betas", "= [", r.optimizer.beta1, ", ", r.optimizer.beta2, "]: both must be in [0, 1)");
  in.require(r.optimizer.eps > 0, "optimizer.eps", r.optimizer.eps, "must be positive");
  in.require(r.optimizer.weight_decay >= 0, "optimizer.weight_decay", r.optimizer.weight_decay, "must be >= 0");

  in.get("schedule.warmup", r.schedule.warmup);
  in.get("schedule.kind", r.schedule.kind);
  in.get("schedule.min_lr_ratio", r.schedule.min_lr_ratio);
  in.get("schedule.decay_fraction", r.schedule.decay_fraction);
  try {
    parse_schedule_kind(r.schedule.kind);
  } catch (const Error& e) {
    in.error("schedule.kind", e.what());
  }
  in.require(r.schedule.warmup >= 0 && r.schedule.warmup < r.train.steps, "schedule.warmup", r.schedule.warmup,
             "must be in [0, train.steps = " + std::to_string(r.train.steps) + ")");
  in.require(r.schedule.min_lr_ratio >= 0 && r.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio",
             r.schedule.min_lr_ratio, "must be in [0, 1]");
  in.require(r.schedule.decay_fraction > 0 && r.schedule.decay_fraction <= 1, "schedule.decay_fraction",
             r.schedule.decay_fraction, "must be in (0, 1]");

  in.get("parallel.sp", r.parallel.sp);
  in.require(r.parallel.sp >= 1, "parallel.sp", r.parallel.sp, "must be >= 1");
  in.require(r.parallel.sp == 1 || find_family(m.family)->sequence_parallel, "parallel.sp", r.parallel.sp,
             "the " + m.family + " family does not support sequence parallelism (its manifest says so)");
  in.require(r.data.seq_len % r.parallel.sp == 0, "data.seq_len", r.data.seq_len,
             "must be divisible by parallel.sp = " + std::to_string(r.parallel.sp));
  in.get("parallel.chain_slices", r.parallel.chain_slices);
  in.require(r.parallel.chain_slices >= 0, "parallel.chain_slices", r.parallel.chain_slices,
             "must be >= 0 (0: one slice per sequence)");

  in.get("checkpoint.every", r.checkpoint.every);
  in.get("checkpoint.keep_last", r.checkpoint.keep_last);
  in.require(r.checkpoint.every >= 0, "checkpoint.every", r.checkpoint.every, "must be >= 0 (0: only at the end)");
  in.require(r.checkpoint.keep_last >= 1, "checkpoint.keep_last", r.checkpoint.keep_last, "must be >= 1");

  in.get("eval.every", r.eval.every);
  in.get("eval.max_tokens", r.eval.max_tokens);
  in.require(r.eval.every >= 0, "eval.every", r.eval.every, "must be >= 0 (0: only at the end)");
  in.require(r.eval.max_tokens >= 0, "eval.max_tokens", r.eval.max_tokens, "must be >= 0 (0: the whole split)");

  in.get("log.every", r.log.every);
  in.get("log.peak_gflops", r.log.peak_gflops);
  in.require(r.log.every >= 1, "log.every", r.log.every, "must be >= 1");
  in.require(r.log.peak_gflops >= 0, "log.peak_gflops", r.log.peak_gflops, "must be >= 0 (0: measure)");

  in.reject_unknown(m.family);
  // Checks a family makes on the whole config (e.g. seq_len a multiple of its block size).
  const FamilySpec* spec = find_family(m.family);
  if (spec->check) {
    std::string why = spec->check(m, r.data.seq_len, r.parallel.sp);
    if (!why.empty()) in.error(check_subject(*spec, why), why);
  }

  std::ostringstream os;
  os << toml::toml_formatter{root};
  r.text = os.str();
  return r;
}

void Recipe::check_device() const {
  if (train.device != "cuda") return;
#ifndef EAT_WITH_CUDA
  fail(train.device_where, ": = \"cuda\", but this eat was built without CUDA (configure with -DEAT_CUDA=ON)");
#else
  EAT_CHECK(cuda_available(), train.device_where, ": = \"cuda\", but no CUDA device is visible to this process");
#endif
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  EAT_CHECK(in, "recipe ", path, ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_recipe(ss.str(), path, overrides);
}

std::string recipe_hash(const Recipe& recipe) { return text_hash(recipe.text); }

std::string text_hash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace eat
