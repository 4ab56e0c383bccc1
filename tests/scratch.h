// A scratch directory for the running test. ctest runs every test in its own process, two at a time, so a fixed
// path shared by two tests races (one test's clean-up removes the other's files mid-write).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

// The directory of this process, removed with everything in it at exit. In memory when the machine has /dev/shm:
// some tests write thousands of small files.
inline const std::filesystem::path& scratch_root() {
  namespace fs = std::filesystem;
  // Never destroyed: the exit handler runs after static destructors registered later than it.
  static const fs::path* root = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    auto* r = new fs::path(base / ("mnemo-test-" + std::to_string(::getpid())));
    fs::create_directories(*r);
    static const pid_t owner = ::getpid();
    std::atexit([] {
      std::error_code ec;
      if (::getpid() == owner) fs::remove_all(scratch_root(), ec);  // not from a forked child (death tests)
    });
    return r;
  }();
  return *root;
}

// An empty directory of the running test (the same one for every call within the test), ending without a slash.
inline std::string scratch_dir() {
  namespace fs = std::filesystem;
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = t ? std::string(t->test_suite_name()) + "." + t->name() : "outside-a-test";
  for (char& c : name)
    if (c == '/') c = '_';  // parameterized tests are named Suite/Test/N
  static std::set<std::string> made;
  const fs::path d = scratch_root() / name;
  if (made.insert(name).second) {
    fs::remove_all(d);
    fs::create_directories(d);
  }
  return d.string();
}
