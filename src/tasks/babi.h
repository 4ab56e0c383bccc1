#pragma once
// bAbI-style stories generated from a seed (after Weston et al. 2015, "Towards AI-complete question answering"):
//   qa1 single supporting fact     "Mary travelled to the office."            "Where is Mary?"            office
//   qa2 two supporting facts       "John picked up the football." + a move   "Where is the football?"    kitchen
//   qa3 three supporting facts     object carried through rooms              "Where was the apple before the kitchen?"
//                                  (four when two people carried it)
//   qa4 two-argument relations     "The hallway is east of the bathroom."    "What is the bathroom west of?" hallway
// and the single facts the RMT tasks hide (memorize / detect & memorize: one qa1 fact; reasoning: two chained qa4
// facts, both needed), plus the passkey of StreamingLLM / llama.cpp. Every answer is computed by simulating the
// world the story describes, so it is right by construction; every qa1–qa4 / RMT answer is one of kLocations.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/rng.h"

namespace mnemo::tasks {

// The six places, in the order of the 6-way classification head's labels.
inline constexpr std::array<const char*, 6> kLocations = {"bathroom", "hallway", "garden",
                                                          "office",   "bedroom", "kitchen"};
inline constexpr std::array<const char*, 4> kNames = {"Mary", "John", "Daniel", "Sandra"};
inline constexpr std::array<const char*, 3> kObjects = {"football", "apple", "milk"};
inline constexpr std::array<const char*, 4> kDirections = {"north", "east", "south", "west"};

// Index of a place in kLocations, -1 if it is not one.
int location_index(std::string_view place);

struct Story {
  std::vector<std::string> facts;  // sentences in story order, each ending in '.'
  std::vector<int> supporting;     // indices into facts of those the answer needs
  std::string question;
  std::string answer;
  std::string prefix;  // text that must open the input (passkey's instruction), "" for none
};

// Number of story sentences for the BABILong-style tasks (drawn uniformly in [min, max]).
struct StoryOptions {
  int qa1_min = 2, qa1_max = 8;
  int qa2_min = 4, qa2_max = 12;
  int qa3_min = 8, qa3_max = 16;
};

Story make_qa1(Rng& rng, const StoryOptions& opt = {});
Story make_qa2(Rng& rng, const StoryOptions& opt = {});
Story make_qa3(Rng& rng, const StoryOptions& opt = {});
Story make_qa4(Rng& rng);
// One qa1 fact ("Sandra journeyed to the garden.") with "Where is Sandra?": the RMT memorize tasks.
Story make_single_fact(Rng& rng);
// RMT reasoning: "The B is D1 of the A." and "The C is D2 of the B." in random order;
// "What is D2 of the place D1 of the A?" -> C. Neither fact alone answers it.
Story make_reasoning(Rng& rng);
// "The pass key is 71432. Remember it. 71432 is the pass key." -> "71432", with llama.cpp's instruction prefix.
Story make_passkey(Rng& rng);

// llama.cpp's passkey filler, cycled as background for the passkey task.
inline constexpr std::array<const char*, 5> kPasskeyFiller = {
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again."};

}  // namespace mnemo::tasks
