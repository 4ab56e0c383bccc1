#include "tasks/babi.h"

#include <algorithm>

#include "base/error.h"

namespace mnemo::tasks {

namespace {

constexpr const char* kMoves[] = {"moved to", "went to", "journeyed to", "travelled to", "went back to"};
constexpr const char* kPicks[] = {"picked up", "got", "grabbed", "took"};
constexpr const char* kDrops[] = {"dropped", "discarded", "put down", "left"};

template <typename T, size_t N>
const char* pick(Rng& rng, const T (&a)[N]) {
  return a[rng.below(N)];
}
int uniform_int(Rng& rng, int lo, int hi) { return lo + int(rng.below(uint64_t(hi - lo + 1))); }
int opposite(int dir) { return (dir + 2) % 4; }  // kDirections is north, east, south, west

// A place other than `not_this` (-1: any).
int other_place(Rng& rng, int not_this) {
  for (;;) {
    int l = int(rng.below(kLocations.size()));
    if (l != not_this) return l;
  }
}

std::string move_fact(Rng& rng, int person, int place) {
  return cat(kNames[person], " ", pick(rng, kMoves), " the ", kLocations[place], ".");
}

// The world of qa2 / qa3: people move between places, pick up and put down objects. A person picks an object up
// only where they are known to be and where the object lies (or an object never seen before), so every touched
// object's place is known at every step.
struct World {
  struct Person {
    int place = -1, last_move = -1;  // fact index of the move that put them there
  };
  struct Object {
    int holder = -1, place = -1;  // place: where it lies (when not held)
    int pick_fact = -1, drop_fact = -1, drop_move = -1;
    // Each place the object has been in, with the fact that brought it there and the pick that was carrying it.
    struct Stop {
      int place, fact, pick;
    };
    std::vector<Stop> trail;
  };
  Person people[kNames.size()];
  Object objects[kObjects.size()];
  std::vector<std::string> facts;

  void move(Rng& rng, int p) {
    int to = other_place(rng, people[p].place);
    people[p].place = to;
    people[p].last_move = int(facts.size());
    for (auto& o : objects)
      if (o.holder == p) o.trail.push_back({to, int(facts.size()), o.pick_fact});
    facts.push_back(move_fact(rng, p, to));
  }
  // One random action; moves when nothing else is possible.
  void step(Rng& rng) {
    double r = rng.uniform();
    if (r >= 0.5) {
      std::vector<std::pair<int, int>> cand;  // (person, object)
      for (int p = 0; p < int(kNames.size()); ++p)
        for (int o = 0; o < int(kObjects.size()); ++o) {
          const Object& ob = objects[o];
          if (r < 0.75) {  // pick up
            if (people[p].place >= 0 && ob.holder < 0 && (ob.place < 0 || ob.place == people[p].place))
              cand.push_back({p, o});
          } else if (ob.holder == p) {  // put down
            cand.push_back({p, o});
          }
        }
      if (!cand.empty()) {
        auto [p, o] = cand[rng.below(cand.size())];
        Object& ob = objects[o];
        if (r < 0.75) {
          ob.holder = p;
          ob.pick_fact = int(facts.size());
          if (ob.trail.empty()) ob.trail.push_back({people[p].place, people[p].last_move, ob.pick_fact});
          facts.push_back(cat(kNames[p], " ", pick(rng, kPicks), " the ", kObjects[o], "."));
        } else {
          ob.holder = -1;
          ob.place = people[p].place;
          ob.drop_fact = int(facts.size());
          ob.drop_move = people[p].last_move;
          facts.push_back(cat(kNames[p], " ", pick(rng, kDrops), " the ", kObjects[o], "."));
        }
        return;
      }
    }
    move(rng, int(rng.below(kNames.size())));
  }
};

std::vector<int> sorted_unique(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

int location_index(std::string_view place) {
  for (size_t i = 0; i < kLocations.size(); ++i)
    if (place == kLocations[i]) return int(i);
  return -1;
}

Story make_single_fact(Rng& rng) {
  int p = int(rng.below(kNames.size())), l = int(rng.below(kLocations.size()));
  Story s;
  s.facts = {move_fact(rng, p, l)};
  s.supporting = {0};
  s.question = cat("Where is ", kNames[p], "?");
  s.answer = kLocations[l];
  return s;
}

Story make_qa1(Rng& rng, const StoryOptions& opt) {
  MNEMO_CHECK(1 <= opt.qa1_min && opt.qa1_min <= opt.qa1_max, "qa1 story length");
  World w;
  int n = uniform_int(rng, opt.qa1_min, opt.qa1_max);
  for (int k = 0; k < n; ++k) w.move(rng, int(rng.below(kNames.size())));
  std::vector<int> moved;
  for (int p = 0; p < int(kNames.size()); ++p)
    if (w.people[p].place >= 0) moved.push_back(p);
  int p = moved[rng.below(moved.size())];
  Story s;
  s.facts = std::move(w.facts);
  s.supporting = {w.people[p].last_move};
  s.question = cat("Where is ", kNames[p], "?");
  s.answer = kLocations[w.people[p].place];
  return s;
}

Story make_qa2(Rng& rng, const StoryOptions& opt) {
  MNEMO_CHECK(2 <= opt.qa2_min && opt.qa2_min <= opt.qa2_max, "qa2 story length");
  for (;;) {  // until some object has been picked up (a few tries at most)
    World w;
    int n = uniform_int(rng, opt.qa2_min, opt.qa2_max);
    while (int(w.facts.size()) < n) w.step(rng);
    std::vector<int> touched;
    for (int o = 0; o < int(kObjects.size()); ++o)
      if (w.objects[o].pick_fact >= 0) touched.push_back(o);
    if (touched.empty()) continue;
    int o = touched[rng.below(touched.size())];
    const World::Object& ob = w.objects[o];
    Story s;
    if (ob.holder >= 0) {
      const World::Person& h = w.people[ob.holder];
      s.answer = kLocations[h.place];
      s.supporting = sorted_unique({ob.pick_fact, h.last_move});
    } else {
      s.answer = kLocations[ob.place];
      s.supporting = sorted_unique({ob.drop_fact, ob.drop_move});
    }
    s.facts = std::move(w.facts);
    s.question = cat("Where is the ", kObjects[o], "?");
    return s;
  }
}

Story make_qa3(Rng& rng, const StoryOptions& opt) {
  MNEMO_CHECK(3 <= opt.qa3_min && opt.qa3_min <= opt.qa3_max, "qa3 story length");
  for (;;) {  // until some object has been carried from one place to another
    World w;
    int n = uniform_int(rng, opt.qa3_min, opt.qa3_max);
    while (int(w.facts.size()) < n) w.step(rng);
    // (object, stop) pairs where the stop's place occurs once in the trail, so "before the PLACE" is unambiguous.
    std::vector<std::pair<int, int>> cand;
    for (int o = 0; o < int(kObjects.size()); ++o) {
      auto& t = w.objects[o].trail;
      for (int j = 1; j < int(t.size()); ++j) {
        int seen = 0;
        for (auto& st : t) seen += st.place == t[j].place;
        if (seen == 1) cand.push_back({o, j});
      }
    }
    if (cand.empty()) continue;
    auto [o, j] = cand[rng.below(cand.size())];
    auto& t = w.objects[o].trail;
    Story s;
    s.answer = kLocations[t[j - 1].place];
    // What brought it to the place before (and the pick that carried it there), the pick that carried it on, and
    // the move that carried it to the place asked about: three facts, four when two people carried it.
    s.supporting = sorted_unique({t[j - 1].fact, t[j - 1].pick, t[j].pick, t[j].fact});
    s.facts = std::move(w.facts);
    s.question = cat("Where was the ", kObjects[o], " before the ", kLocations[t[j].place], "?");
    return s;
  }
}

Story make_qa4(Rng& rng) {
  int y = int(rng.below(kLocations.size()));
  int x1 = other_place(rng, y), x2;
  do x2 = other_place(rng, y); while (x2 == x1);
  int d1 = int(rng.below(4)), d2;
  do d2 = int(rng.below(4)); while (d2 == d1);  // two rooms in one direction would make the question ambiguous
  Story s;
  s.facts = {cat("The ", kLocations[x1], " is ", kDirections[d1], " of the ", kLocations[y], "."),
             cat("The ", kLocations[x2], " is ", kDirections[d2], " of the ", kLocations[y], ".")};
  int k = int(rng.below(2));
  int x = k ? x2 : x1, d = k ? d2 : d1;
  if (rng.below(2))  // "What is north of the kitchen?"
    s.question = cat("What is ", kDirections[d], " of the ", kLocations[y], "?");
  else  // x is d of y  <=>  y is opposite(d) of x: "What is the kitchen south of?"
    s.question = cat("What is the ", kLocations[y], " ", kDirections[opposite(d)], " of?");
  s.answer = kLocations[x];
  s.supporting = {k};
  return s;
}

Story make_reasoning(Rng& rng) {
  int a = int(rng.below(kLocations.size())), b = other_place(rng, a), c;
  do c = other_place(rng, b); while (c == a);
  int d1 = int(rng.below(4)), d2;
  do d2 = int(rng.below(4)); while (d2 == opposite(d1));  // c would stand where a stands
  std::string f1 = cat("The ", kLocations[b], " is ", kDirections[d1], " of the ", kLocations[a], ".");
  std::string f2 = cat("The ", kLocations[c], " is ", kDirections[d2], " of the ", kLocations[b], ".");
  Story s;
  if (rng.below(2)) s.facts = {f1, f2};
  else s.facts = {f2, f1};
  s.supporting = {0, 1};
  s.question = cat("What is ", kDirections[d2], " of the place ", kDirections[d1], " of the ", kLocations[a], "?");
  s.answer = kLocations[c];
  return s;
}

Story make_passkey(Rng& rng) {
  std::string key = std::to_string(10000 + rng.below(90000));
  Story s;
  s.prefix =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
      "I will quiz you about the important information there.";
  s.facts = {cat("The pass key is ", key, ". Remember it. ", key, " is the pass key.")};
  s.supporting = {0};
  s.question = "What is the pass key?";
  s.answer = key;
  return s;
}

}  // namespace mnemo::tasks
