// eat train RECIPE.toml [--set section.key=value ...] [--resume auto|never|PATH] [--profile]
#include "app/commands.h"
#include "framework/config/recipe.h"
#include "framework/comm/communicator.h"
#include "framework/train/trainer.h"

namespace eat::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a TOML recipe");
  auto recipe = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto resume = std::make_shared<std::string>("auto");
  cmd->add_option("recipe", *recipe, "Recipe file (see recipes/README.md)")->required();
  cmd->add_option("--set", *sets, "Override a recipe key: section.key=value (repeatable)")->take_all();
  cmd->add_option("--resume", *resume, "auto: newest complete checkpoint of the run; never; or a checkpoint directory")
      ->capture_default_str();
  auto profile = std::make_shared<bool>(false);
  cmd->add_flag("--profile", *profile,
                "Time every op after the first step and print where a step's time goes (rank 0)");
  cmd->callback([=] {
    TrainOptions opt;
    opt.resume = *resume;
    opt.profile = *profile;
    opt.world = &world();  // all ranks under mpirun, else this process alone
    // Every rank reads the recipe and checks it against the world and its device: a mistake in it
    // is one line from rank 0 and exit 1 on every rank, not one report per rank and an aborted job.
    Recipe r;
    agree_on_errors(*opt.world, [&] {
      r = load_recipe(*recipe, *sets);
      r.check_world(opt.world->size());
      r.check_device();
    });
    train(r, opt);
  });
}

}  // namespace eat::cli
