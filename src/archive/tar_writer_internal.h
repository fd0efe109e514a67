#pragma once
// A deterministic ustar writer over a file descriptor: what the oci-archive
// and docker-archive destinations write. Every entry gets mtime 0, uid and
// gid 0, no user or group names, mode 0644 (files) or 0755 (directories),
// so that two writes of the same entries in the same order give the same
// bytes. Sizes beyond ustar's 11 octal digits (8 GiB) use the base-256
// form GNU tar, libarchive, Go's archive/tar (docker, skopeo) all read.
// Names must fit ustar's 100-byte name field (ours: "blobs/sha256/<hex>",
// "<hex>.tar"); longer ones are refused (InvalidArgument).
//
// Use: Begin(name, size), Write the exact size, End; Close at the end
// (the two zero blocks). Errors: I/O errors of the fd (wrapped with
// `what`), InvalidArgument for more or fewer bytes than declared.
// Not thread-safe.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace archives::internal {

class TarWriter {
 public:
  // `fd` not owned; `what` names the output in errors ("`/tmp/x.tar`").
  TarWriter(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}

  [[nodiscard]] common::Status Directory(std::string_view name);
  [[nodiscard]] common::Status Begin(std::string_view name, int64_t size);
  [[nodiscard]] common::Status Write(std::span<const std::byte> data);
  [[nodiscard]] common::Status End();
  // A whole small file.
  [[nodiscard]] common::Status File(std::string_view name, std::string_view data);
  [[nodiscard]] common::Status Close();

  // Bytes written to the fd so far.
  int64_t written() const { return written_; }
  // Bytes of the current entry still expected.
  int64_t remaining() const { return remaining_; }

 private:
  common::Status Header(std::string_view name, int64_t size, char type);
  common::Status Out(std::span<const std::byte> data);

  int fd_;
  std::string what_;
  int64_t written_ = 0;
  int64_t remaining_ = 0;
  int64_t entry_size_ = 0;
  bool in_entry_ = false;
};

}  // namespace archives::internal
