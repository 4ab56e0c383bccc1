#include "base/file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "scratch.h"

TEST(File, AtomicWriteLeavesOldContentWhenTheWriterFails) {
  std::string dir = scratch_dir();
  std::string p = dir + "/x.txt";
  mnemo::atomic_write(p, "first");
  EXPECT_THROW(mnemo::atomic_write(p, [](std::ostream& o) {
                 o << "partial";
                 throw mnemo::Error("boom");
               }),
               mnemo::Error);
  EXPECT_EQ(mnemo::read_file(p), "first");
  for (auto& e : std::filesystem::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "x.txt");
  mnemo::MappedFile m(p);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), m.size()), "first");
}

TEST(File, MissingFileErrorNamesThePath) {
  try {
    mnemo::read_file("/nonexistent/abc.json");
    FAIL();
  } catch (const mnemo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/abc.json: cannot open"), std::string::npos);
  }
}
