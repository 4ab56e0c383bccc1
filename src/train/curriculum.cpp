#include "train/curriculum.h"

#include "base/error.h"

namespace mnemo {

Json CurriculumConfig::to_json() const {
  Json j = Json::object();
  j["start_segments"] = start_segments;
  j["max_segments"] = max_segments;
  j["threshold"] = threshold;
  j["confirm"] = confirm;
  j["min_steps"] = min_steps;
  j["max_steps"] = max_steps;
  j["mixed_steps"] = mixed_steps;
  j["mixed_min"] = mixed_min;
  return j;
}

CurriculumConfig CurriculumConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": curriculum must be an object"));
  CurriculumConfig c;
  c.start_segments = j.int_or("start_segments", c.start_segments);
  c.max_segments = j.int_or("max_segments", c.max_segments);
  c.threshold = j.number_or("threshold", c.threshold);
  c.confirm = j.int_or("confirm", c.confirm);
  c.min_steps = j.int_or("min_steps", c.min_steps);
  c.max_steps = j.int_or("max_steps", c.max_steps);
  c.mixed_steps = j.int_or("mixed_steps", c.mixed_steps);
  c.mixed_min = j.int_or("mixed_min", c.mixed_min);
  c.validate();
  return c;
}

void CurriculumConfig::validate() const {
  if (start_segments < 1) throw Error("--start-segments must be at least 1");
  if (max_segments < start_segments) throw Error("--max-segments must be at least --start-segments");
  if (!(threshold > 0 && threshold <= 1)) throw Error("--threshold must be in (0, 1]");
  if (confirm < 1) throw Error("--confirm must be at least 1");
  if (min_steps < 0 || max_steps < 1 || max_steps < min_steps)
    throw Error("--min-steps / --max-steps: need 0 <= min <= max and max >= 1");
  if (mixed_steps < 0) throw Error("--mixed-steps must be >= 0");
  if (mixed_min < 1 || mixed_min > max_segments) throw Error("--mixed-min must be in [1, --max-segments]");
}

Curriculum::Curriculum(CurriculumConfig cfg) : cfg_(cfg) {
  cfg_.validate();
  segments_ = cfg_.start_segments;
}

int64_t Curriculum::batch_segments(Rng& rng) const {
  if (phase_ != Phase::Mixed) return segments_;
  return cfg_.mixed_min + int64_t(rng.below(uint64_t(cfg_.max_segments - cfg_.mixed_min + 1)));
}

Curriculum::Event Curriculum::on_step() {
  if (phase_ == Phase::Done) return Event::Done;
  ++steps_;
  if (phase_ == Phase::Mixed && steps_ >= cfg_.mixed_steps) {
    phase_ = Phase::Done;
    history_.push_back({-1, steps_, last_acc_, true});  // segments -1 marks the mixed phase
    return Event::Done;
  }
  return Event::None;
}

Curriculum::Event Curriculum::on_eval(double accuracy) {
  last_acc_ = accuracy;
  if (phase_ != Phase::Stages) return Event::None;
  ok_ = (accuracy >= cfg_.threshold && steps_ >= cfg_.min_steps) ? ok_ + 1 : 0;
  if (ok_ >= cfg_.confirm) return advance(true);
  if (steps_ >= cfg_.max_steps) return advance(false);
  return Event::None;
}

Curriculum::Event Curriculum::advance(bool converged) {
  history_.push_back({segments_, steps_, last_acc_, converged});
  steps_ = 0;
  ok_ = 0;
  if (segments_ < cfg_.max_segments) {
    ++segments_;
    return Event::Advanced;
  }
  if (cfg_.mixed_steps > 0) {
    phase_ = Phase::Mixed;
    return Event::EnteredMixed;
  }
  phase_ = Phase::Done;
  return Event::Done;
}

void Curriculum::set_config(const CurriculumConfig& cfg) {
  cfg.validate();
  if (cfg.max_segments < segments_)
    throw Error(cat("--max-segments ", cfg.max_segments, " is below the current stage (", segments_, " segments)"));
  cfg_ = cfg;
  if (phase_ != Phase::Done || cfg_.mixed_steps <= 0) return;
  const bool ended_mixed = !history_.empty() && history_.back().segments == -1;
  if (ended_mixed && steps_ >= cfg_.mixed_steps) return;
  if (ended_mixed) history_.pop_back();  // the mixed phase goes on: its record is written when it ends
  else steps_ = 0;                       // the stages ended the run: a mixed phase starts
  phase_ = Phase::Mixed;
}

const char* phase_name(Curriculum::Phase p) {
  switch (p) {
    case Curriculum::Phase::Stages: return "stages";
    case Curriculum::Phase::Mixed: return "mixed";
    case Curriculum::Phase::Done: return "done";
  }
  return "?";
}

Json Curriculum::to_json() const {
  Json j = Json::object();
  j["config"] = cfg_.to_json();
  j["phase"] = phase_name(phase_);
  j["segments"] = segments_;
  j["steps"] = steps_;
  j["ok"] = ok_;
  j["last_accuracy"] = last_acc_;
  Json h = Json::array();
  for (auto& r : history_) {
    Json e = Json::object();
    e["segments"] = r.segments;
    e["steps"] = r.steps;
    e["accuracy"] = r.last_accuracy;
    e["converged"] = r.converged;
    h.push_back(e);
  }
  j["history"] = h;
  return j;
}

Curriculum Curriculum::from_json(const Json& j, const std::string& source) {
  const Json* c = j.find("config");
  if (!c) throw Error(cat(source, ": curriculum has no config"));
  Curriculum cur(CurriculumConfig::from_json(*c, source));
  const std::string ph = j.string_or("phase", "stages");
  if (ph == "stages") cur.phase_ = Phase::Stages;
  else if (ph == "mixed") cur.phase_ = Phase::Mixed;
  else if (ph == "done") cur.phase_ = Phase::Done;
  else throw Error(cat(source, ": curriculum phase '", ph, "' unknown"));
  cur.segments_ = j.int_or("segments", 1);
  cur.steps_ = j.int_or("steps", 0);
  cur.ok_ = j.int_or("ok", 0);
  cur.last_acc_ = j.number_or("last_accuracy", 0);
  if (const Json* h = j.find("history"))
    for (auto& e : h->as_array(source + ": curriculum.history"))
      cur.history_.push_back({e.int_or("segments", 0), e.int_or("steps", 0), e.number_or("accuracy", 0),
                              e.bool_or("converged", false)});
  return cur;
}

}  // namespace mnemo
