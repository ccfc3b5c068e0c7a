#include "framework/train/validation.h"

#include <cstdio>
#include <limits>

namespace eat {

double validate(TrainingRun& run) {
  if (!run.val_file || !run.leader) return std::numeric_limits<double>::quiet_NaN();
  run.model->set_sequence_parallel(nullptr);  // rank 0 evaluates whole windows on its own
  EvalResult ev = evaluate(*run.model, *run.val_file, run.eval_options, run.val_mask.get());
  if (run.layout.sp > 1) run.model->set_sequence_parallel(run.groups.sp_group.get(), run.recipe.parallel.chain_slices);
  nlohmann::json line = {{"step", run.state.step}, {"val_loss", ev.loss}, {"val_ppl", ev.ppl}, {"val_bpb", ev.bpb},
                         {"val_tokens", ev.tokens}};
  if (run.val_mask) line["val_accuracy"] = ev.accuracy;
  add_aux_fields(line, ev.aux, "val_");
  run.record(line);
  if (run.say) {
    char aux[32] = "";
    if (!ev.aux.empty()) std::snprintf(aux, sizeof aux, " | aux %.4f", weighted_aux_total(ev.aux));
    char accuracy[32] = "";
    if (run.val_mask) std::snprintf(accuracy, sizeof accuracy, " | accuracy %.4f", ev.accuracy);
    std::printf("step %lld | val loss %.4f%s | ppl %.3f | bpb %.4f%s | %lld tokens\n", static_cast<long long>(run.state.step),
                ev.loss, aux, ev.ppl, ev.bpb, accuracy, static_cast<long long>(ev.tokens));
    std::fflush(stdout);
  }
  return ev.loss;
}

}  // namespace eat
