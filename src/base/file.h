#pragma once
// File utilities. Every error names the path.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace mnemo {

// Whole file as bytes. Throws Error("PATH: cannot open: No such file or directory").
std::string read_file(const std::string& path);

// Write atomically: fn writes to a stream on PATH.tmp.XXXX, which is flushed, fsync'd and renamed over PATH.
// If fn throws or the write fails, PATH is untouched and the temporary is removed.
void atomic_write(const std::string& path, const std::function<void(std::ostream&)>& fn);
void atomic_write(const std::string& path, std::string_view bytes);
// Append `line` and a newline to PATH (created if absent): a training run's log.jsonl. Error naming PATH on failure.
void append_line(const std::string& path, std::string_view line);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// Creates the directory and its parents; fine if it exists.
void make_directories(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// A read-only memory map of a whole file (empty files map to size 0). Move-only.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mnemo
