// Checkpoint files: a container of kind "checkpoint" (docs/training.md lists what it holds).
#include "train/checkpoint.h"

#include <cstring>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "util/container.h"

namespace lowbit {
namespace {

nlohmann::json stats_json(const EpochStats& s) {
  return {{"epoch", s.epoch},
          {"loss", s.loss},
          {"train_accuracy", s.train_accuracy},
          {"validation_accuracy", s.validation_accuracy},
          {"validation_loss", s.validation_loss},
          {"learning_rate", s.learning_rate},
          {"seconds", s.seconds},
          {"selected", s.selected}};
}

EpochStats stats_from_json(const nlohmann::json& j) {
  EpochStats s;
  s.epoch = j.at("epoch");
  s.loss = j.at("loss");
  s.train_accuracy = j.at("train_accuracy");
  s.validation_accuracy = j.at("validation_accuracy");
  s.validation_loss = j.at("validation_loss");
  s.learning_rate = j.at("learning_rate");
  s.seconds = j.at("seconds");
  s.selected = j.at("selected");
  return s;
}

// Tensors in the order the file holds them: parameters, buffers, optimizer state, best.
std::vector<Tensor*> file_tensors(Model& model, Optimizer& optimizer, std::vector<Tensor>& best) {
  std::vector<Tensor*> out = model.parameters();
  for (Tensor* b : model.buffers()) out.push_back(b);
  for (Tensor& t : optimizer.state()) out.push_back(&t);
  for (Tensor& t : best) out.push_back(&t);
  return out;
}

// A recipe difference as "learning_rate 0.1 there, 0.05 here".
std::string first_difference(const nlohmann::json& there, const nlohmann::json& here) {
  for (const auto& [key, value] : here.items())
    if (!there.contains(key) || there[key] != value)
      return key + " " + (there.contains(key) ? there[key].dump() : "unset") + " there, " +
             value.dump() + " here";
  return "another recipe";
}

}  // namespace

void save_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     const TrainingState& state, const nlohmann::json& recipe) {
  Container container;
  container.version = 3;
  nlohmann::json history = nlohmann::json::array();
  for (const EpochStats& s : state.history) history.push_back(stats_json(s));
  container.header = {{"kind", "checkpoint"},
                      {"description", model.description()},
                      {"recipe", recipe},
                      {"epochs_done", state.epochs_done},
                      {"step", state.step},
                      {"optimizer_steps", optimizer.steps()},
                      {"rng", state.rng},
                      {"history", history},
                      {"best_accuracy", state.best_accuracy},
                      {"best_epoch", state.best_epoch},
                      {"best_tensors", state.best.size()}};
  container.blobs.emplace_back(reinterpret_cast<const char*>(state.order.data()),
                               state.order.size() * sizeof(int64_t));
  std::vector<Tensor> best = state.best;
  for (Tensor* t : file_tensors(model, optimizer, best))
    container.blobs.push_back(floats_to_blob(t->data(), t->size()));
  write_file_atomic(path, encode_container(std::move(container)));
}

void load_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     TrainingState& state, const nlohmann::json& recipe) {
  const Container container = read_container(path, "checkpoint");
  const nlohmann::json& h = container.header;
  try {
    if (h.at("description") != model.description())
      throw Error(path + ": checkpoint of another model (" +
                  h.at("description").value("name", std::string("unnamed")) + ")");
    if (h.at("recipe") != recipe)
      throw Error(path + ": checkpoint of another run (" + first_difference(h.at("recipe"), recipe) + ")");
    state.epochs_done = h.at("epochs_done");
    state.step = h.at("step");
    state.rng = h.at("rng");
    state.history.clear();
    for (const auto& s : h.at("history")) state.history.push_back(stats_from_json(s));
    state.best_accuracy = h.at("best_accuracy");
    state.best_epoch = h.at("best_epoch");
    const size_t best_tensors = h.at("best_tensors");
    optimizer.set_steps(h.at("optimizer_steps"));
    if (state.epochs_done < 0 || state.step < 0 || state.history.size() != static_cast<size_t>(state.epochs_done))
      throw Error(path + ": inconsistent checkpoint header");
    // The best copy is shaped like the parameters and buffers.
    state.best.clear();
    if (best_tensors) {
      for (Tensor* p : model.parameters()) state.best.emplace_back(p->shape());
      for (Tensor* b : model.buffers()) state.best.emplace_back(b->shape());
      if (state.best.size() != best_tensors) throw Error(path + ": wrong number of best-epoch tensors");
    }
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": checkpoint header lacks a field or has a wrong type");
  }
  std::vector<Tensor*> tensors = file_tensors(model, optimizer, state.best);
  if (container.blobs.size() != tensors.size() + 1)
    throw Error(path + ": holds " + std::to_string(container.blobs.size()) + " blobs, expected " +
                std::to_string(tensors.size() + 1));
  const std::string& order = container.blobs[0];
  if (order.size() % sizeof(int64_t) != 0) throw Error(path + ": bad image order");
  state.order.resize(order.size() / sizeof(int64_t));
  std::memcpy(state.order.data(), order.data(), order.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    blob_to_floats(container.blobs[i + 1], tensors[i]->data(), tensors[i]->size(), path);
}

}  // namespace lowbit
