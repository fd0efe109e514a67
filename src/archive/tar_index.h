#pragma once
// The entries of a tar archive (the archive itself, not a layer: a docker
// save or an OCI layout tar), found by reading the 512-byte headers and
// skipping each body, so that a reader can later pread any entry's bytes
// without copying the archive. ustar, GNU (long names, type 'L') and pax
// (per-entry "path" and "size" records) headers are understood; global pax
// headers and other metadata entries are skipped.
//
// Entry names are checked as they are read: an absolute name, or one with
// a `..` component, is refused (InvalidArgument "archive `F`: entry `N`
// escapes the archive") — nothing in an archive may name a place outside
// it. A name is normalised ("./a//b" → "a/b"; a trailing '/' dropped).
//
// Thread-safety: a TarIndex is a plain value; IndexTar reads `fd` from one
// thread.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"

namespace archives {

struct TarEntry {
  std::string name;    // normalised
  char type = '0';     // '0' regular, '5' directory, '2' symlink…
  int64_t offset = 0;  // of the body in the archive
  int64_t size = 0;
};

// Regular-file entries by name (a later entry with the same name replaces
// an earlier one, as tar extraction does).
using TarIndex = std::map<std::string, TarEntry, std::less<>>;

// Reads entries from `fd` in order, from its current position. For each,
// `on_entry` is called with the entry (offset = the body's position in the
// stream) and a reader of its body: `read(buf, n)` returns the bytes read
// (0 at the body's end) or an error; the walker skips whatever the callback
// did not read (lseek when `fd` seeks, else reading). `on_entry` returning
// an error stops the walk with it.
// Errors: DataLoss "archive `F` is truncated …" when the stream ends inside
// a header or a body, or without its end marker (two zero blocks; a stream
// that ends after one is accepted, as GNU tar does); InvalidArgument for a
// bad header checksum or an escaping name; I/O errors.
using BodyReader = std::function<common::Result<size_t>(void* buf, size_t n)>;
[[nodiscard]] common::Status WalkTar(
    int fd, const std::string& what,
    const std::function<common::Status(const TarEntry&, const BodyReader&)>& on_entry);

// The regular files of the archive open at `fd` (a seekable file), read
// from offset 0. `what` names the archive in errors. Errors: WalkTar's.
[[nodiscard]] common::Result<TarIndex> IndexTar(int fd, const std::string& what);

// The entry name of a blob in an OCI image layout (and its tar):
// "blobs/<algorithm>/<hex>".
std::string LayoutBlobName(const common::Digest& digest);

}  // namespace archives
