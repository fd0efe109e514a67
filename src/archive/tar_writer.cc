#include <unistd.h>

#include <array>
#include <cstring>

#include "archive/tar_writer_internal.h"
#include "common/fs.h"

namespace archives::internal {
namespace {

using common::Errc;
using common::MakeError;

constexpr size_t kBlock = 512;

// Writes `value` as `width - 1` octal digits and a NUL (ustar numeric
// fields), or in base-256 (high bit of the first byte set) when it does
// not fit.
void Number(char* field, size_t width, int64_t value) {
  const int64_t octal_max = (int64_t{1} << (3 * (width - 1))) - 1;
  if (value <= octal_max) {
    std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                  static_cast<unsigned long long>(value));
    return;
  }
  std::memset(field, 0, width);
  field[0] = static_cast<char>(0x80);
  for (size_t i = width - 1; i > 0 && value > 0; --i, value >>= 8)
    field[i] = static_cast<char>(value & 0xff);
}

}  // namespace

common::Status TarWriter::Out(std::span<const std::byte> data) {
  std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
  if (auto st = common::WriteAll(fd_, s); !st)
    return std::unexpected(st.error().Wrap("write " + what_));
  written_ += static_cast<int64_t>(data.size());
  return {};
}

common::Status TarWriter::Header(std::string_view name, int64_t size, char type) {
  if (in_entry_) return MakeError(Errc::kInternal, "tar " + what_ + ": entry not ended");
  if (name.empty() || name.size() > 100)
    return MakeError(Errc::kInvalidArgument,
                     "tar " + what_ + ": name `" + std::string(name) + "` does not fit ustar");
  std::array<char, kBlock> h{};
  std::memcpy(h.data(), name.data(), name.size());
  Number(&h[100], 8, type == '5' ? 0755 : 0644);  // mode
  Number(&h[108], 8, 0);                          // uid
  Number(&h[116], 8, 0);                          // gid
  Number(&h[124], 12, size);                      // size
  Number(&h[136], 12, 0);                         // mtime
  h[156] = type;
  std::memcpy(&h[257], "ustar", 6);  // magic "ustar\0"
  std::memcpy(&h[263], "00", 2);     // version
  Number(&h[329], 8, 0);             // devmajor
  Number(&h[337], 8, 0);             // devminor
  // The checksum is computed with its own field as eight spaces.
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(&h[148], 7, "%06o", sum);
  h[154] = '\0';
  h[155] = ' ';
  return Out(std::as_bytes(std::span(h)));
}

common::Status TarWriter::Directory(std::string_view name) { return Header(name, 0, '5'); }

common::Status TarWriter::Begin(std::string_view name, int64_t size) {
  TRY(Header(name, size, '0'));
  in_entry_ = true;
  remaining_ = entry_size_ = size;
  return {};
}

common::Status TarWriter::Write(std::span<const std::byte> data) {
  if (!in_entry_) return MakeError(Errc::kInternal, "tar " + what_ + ": write outside an entry");
  if (static_cast<int64_t>(data.size()) > remaining_)
    return MakeError(Errc::kDataLoss, "tar " + what_ + ": entry longer than its declared " +
                                          std::to_string(entry_size_) + " bytes");
  TRY(Out(data));
  remaining_ -= static_cast<int64_t>(data.size());
  return {};
}

common::Status TarWriter::End() {
  if (!in_entry_) return MakeError(Errc::kInternal, "tar " + what_ + ": no entry to end");
  if (remaining_ != 0)
    return MakeError(Errc::kDataLoss, "tar " + what_ + ": entry " + std::to_string(remaining_) +
                                          " bytes short of " + std::to_string(entry_size_));
  in_entry_ = false;
  static constexpr std::array<std::byte, kBlock> kZeros{};
  const size_t pad = (kBlock - entry_size_ % kBlock) % kBlock;
  return Out(std::span(kZeros).first(pad));
}

common::Status TarWriter::File(std::string_view name, std::string_view data) {
  TRY(Begin(name, static_cast<int64_t>(data.size())));
  TRY(Write(std::as_bytes(std::span(data.data(), data.size()))));
  return End();
}

common::Status TarWriter::Close() {
  static constexpr std::array<std::byte, 2 * kBlock> kZeros{};
  return Out(kZeros);
}

}  // namespace archives::internal
