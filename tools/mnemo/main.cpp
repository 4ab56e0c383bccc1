// mnemo <verb> [options]: results on stdout (one JSON object with --json), progress on stderr, exit 0 on success,
// non-zero with a one-line error naming the input at fault.
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "cli.h"

// On stdout when asked for (--help), on stderr after a mistake.
static void usage(std::FILE* out) {
  std::fprintf(out, "usage: mnemo <verb> [options]   (mnemo <verb> --help for a verb's options)\n\nverbs:\n");
  for (auto& [name, v] : mnemo::cli::verbs()) std::fprintf(out, "  %-12s %s\n", name.c_str(), v.summary.c_str());
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string verb = argv[1];
  auto it = mnemo::cli::verbs().find(verb);
  if (it == mnemo::cli::verbs().end()) {
    std::fprintf(stderr, "mnemo: unknown verb '%s'\n", verb.c_str());
    usage(stderr);
    return 2;
  }
  std::vector<std::string> rest(argv + 2, argv + argc);
  // Before the verb reads anything, so help never trips over a missing or unknown flag.
  if (mnemo::cli::wants_help(rest)) {
    std::fputs(mnemo::cli::help_text(it->second, rest).c_str(), stdout);
    return 0;
  }
  try {
    mnemo::cli::Args args(verb, rest, mnemo::cli::form_word(it->second, rest));
    return it->second.run(args);
  } catch (const mnemo::Error& e) {
    std::fprintf(stderr, "mnemo %s: error: %s\n", verb.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mnemo %s: error: out of memory\n", verb.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnemo %s: error: %s\n", verb.c_str(), e.what());
    return 1;
  }
}
