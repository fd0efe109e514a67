#include "archive/tar_index.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <vector>

namespace archives {
namespace {

using common::Errc;
using common::MakeError;

constexpr size_t kBlock = 512;
// Long names and pax headers are kept in memory: bound them.
constexpr int64_t kMaxMetaSize = 1 << 20;

// Reads up to `n` bytes, fewer only at the end of the stream.
common::Result<size_t> ReadFull(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("read");
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

std::string Field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// A numeric header field: octal text, or base-256 when the high bit of the
// first byte is set (GNU's form for sizes over 8 GiB).
std::optional<int64_t> Number(const unsigned char* p, size_t n) {
  if ((p[0] & 0x80) != 0) {
    int64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v > (INT64_MAX >> 8)) return std::nullopt;
      v = (v << 8) | p[i];
    }
    return v;
  }
  int64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v > (INT64_MAX >> 3)) return std::nullopt;
    v = v * 8 + (p[i] - '0');
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != 0) return std::nullopt;
  return v;
}

bool ChecksumOk(const unsigned char* h) {
  auto stored = Number(h + 148, 8);
  if (!stored) return false;
  int64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return sum == *stored;
}

// "./a//b/" → "a/b"; nullopt when absolute or holding a ".." component.
std::optional<std::string> Normalise(std::string_view name) {
  if (name.starts_with('/')) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view part = name.substr(i, j - i);
    if (part == "..") return std::nullopt;
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  return out;
}

// The "path" and "size" records of a pax extended header.
void ParsePax(std::string_view text, std::optional<std::string>& path,
              std::optional<int64_t>& size) {
  while (!text.empty()) {
    size_t sp = text.find(' ');
    if (sp == std::string_view::npos) return;
    int64_t len = 0;
    for (char c : text.substr(0, sp)) {
      if (c < '0' || c > '9') return;
      len = len * 10 + (c - '0');
      if (len > static_cast<int64_t>(text.size())) return;
    }
    if (len <= static_cast<int64_t>(sp) + 1) return;
    std::string_view rec = text.substr(sp + 1, static_cast<size_t>(len) - sp - 1);
    if (rec.ends_with('\n')) rec.remove_suffix(1);
    size_t eq = rec.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
      if (key == "path") path = std::string(value);
      if (key == "size") {
        int64_t v = 0;
        bool ok = !value.empty();
        for (char c : value) ok = ok && c >= '0' && c <= '9' && (v = v * 10 + (c - '0')) >= 0;
        if (ok) size = v;
      }
    }
    text.remove_prefix(static_cast<size_t>(len));
  }
}

}  // namespace

common::Status WalkTar(
    int fd, const std::string& what,
    const std::function<common::Status(const TarEntry&, const BodyReader&)>& on_entry) {
  auto where = [&] { return "archive `" + what + "`"; };
  auto truncated = [&](const std::string& inside) {
    return MakeError(Errc::kDataLoss, where() + " is truncated (it ends inside " + inside + ")");
  };
  // A file seeks over bodies; a pipe reads through them.
  off_t start = ::lseek(fd, 0, SEEK_CUR);
  struct stat st {};
  const bool seekable = start >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  int64_t pos = seekable ? start : 0;
  std::vector<char> scratch(1 << 16);
  // Moves the stream to `to` (>= pos), reading when it cannot seek; false
  // when the stream ends first.
  auto skip_to = [&](int64_t to) -> common::Result<bool> {
    if (seekable) {
      if (to > st.st_size) return false;
      if (::lseek(fd, to, SEEK_SET) < 0) return common::ErrnoError("seek " + where());
      pos = to;
      return true;
    }
    while (pos < to) {
      size_t want = static_cast<size_t>(std::min<int64_t>(to - pos, scratch.size()));
      ASSIGN_OR_RETURN(size_t n, ReadFull(fd, scratch.data(), want));
      pos += static_cast<int64_t>(n);
      if (n < want) return false;
    }
    return true;
  };

  std::optional<std::string> long_name;  // from a GNU 'L' entry or a pax "path"
  std::optional<int64_t> pax_size;
  std::array<unsigned char, kBlock> h{};
  bool saw_zero = false;
  while (true) {
    auto got = ReadFull(fd, h.data(), kBlock);
    if (!got) return std::unexpected(got.error().Wrap(where()));
    pos += static_cast<int64_t>(*got);
    if (*got == 0 && saw_zero) return {};  // one end block, then EOF: GNU tar accepts it
    if (*got < kBlock) return truncated(*got == 0 ? "its end marker" : "a header");
    bool zero = std::all_of(h.begin(), h.end(), [](unsigned char c) { return c == 0; });
    if (zero) {
      if (saw_zero) return {};
      saw_zero = true;
      continue;
    }
    if (saw_zero) return MakeError(Errc::kInvalidArgument, where() + ": data after a zero block");
    const char* c = reinterpret_cast<const char*>(h.data());
    if (!ChecksumOk(h.data()))
      return MakeError(Errc::kInvalidArgument, where() + ": bad tar header checksum at offset " +
                                                   std::to_string(pos - 512));
    auto size = Number(h.data() + 124, 12);
    if (!size) return MakeError(Errc::kInvalidArgument, where() + ": bad tar size field");
    char type = c[156] == 0 ? '0' : c[156];
    if (pax_size && type != 'x' && type != 'g' && type != 'L' && type != 'K') size = pax_size;
    int64_t body = pos, end = body + *size, padded = body + (*size + 511) / 512 * 512;

    if (type == 'L' || type == 'x' || type == 'g' || type == 'K') {
      if (*size > kMaxMetaSize)
        return MakeError(Errc::kInvalidArgument, where() + ": tar metadata entry over 1 MiB");
      std::string meta(static_cast<size_t>(*size), '\0');
      ASSIGN_OR_RETURN(size_t n, ReadFull(fd, meta.data(), meta.size()));
      pos += static_cast<int64_t>(n);
      if (n < meta.size()) return truncated("a header");
      ASSIGN_OR_RETURN(bool ok, skip_to(padded));
      if (!ok) return truncated("a header");
      if (type == 'L') long_name = std::string(meta.c_str());
      if (type == 'x') ParsePax(meta, long_name, pax_size);
      continue;
    }

    std::string raw = long_name ? *long_name : Field(c, 100);
    if (!long_name && std::memcmp(c + 257, "ustar", 5) == 0 && c[345] != 0)
      raw = Field(c + 345, 155) + "/" + raw;
    long_name.reset();
    pax_size.reset();
    auto name = Normalise(raw);
    if (!name)
      return MakeError(Errc::kInvalidArgument,
                       where() + ": entry `" + raw + "` escapes the archive (absolute or `..`)");
    TarEntry e{
        .name = std::move(*name), .type = type == '7' ? '0' : type, .offset = body, .size = *size};
    int64_t left = e.size;
    BodyReader read = [&](void* buf, size_t n) -> common::Result<size_t> {
      size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(n)));
      if (want == 0) return size_t{0};
      ASSIGN_OR_RETURN(size_t got2, ReadFull(fd, buf, want));
      pos += static_cast<int64_t>(got2);
      left -= static_cast<int64_t>(got2);
      if (got2 < want) return truncated("entry `" + e.name + "`");
      return got2;
    };
    TRY(on_entry(e, read));
    ASSIGN_OR_RETURN(bool ok, skip_to(std::max(padded, pos)));
    if (!ok) return truncated(pos < end || !seekable ? "entry `" + e.name + "`" : "its padding");
  }
}

common::Result<TarIndex> IndexTar(int fd, const std::string& what) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return common::ErrnoError("seek archive `" + what + "`");
  TarIndex index;
  TRY(WalkTar(fd, what, [&](const TarEntry& e, const BodyReader&) -> common::Status {
    if (e.type == '0') index[e.name] = e;
    return {};
  }));
  return index;
}

std::string LayoutBlobName(const common::Digest& digest) {
  return "blobs/" + std::string(digest.algorithm_name()) + "/" + digest.hex();
}

}  // namespace archives
