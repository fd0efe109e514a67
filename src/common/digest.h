#pragma once
// Content digests ("sha256:<64 hex>") and streaming SHA-256.
//
// A Digest is validated once, on construction through Parse or
// Sha256::Finish, and is then passed around as a value, never as a bare
// string. Only sha256 and sha512 are accepted (the OCI image-spec's
// registered algorithms); the hex must be lower case and of the
// algorithm's length.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace common {

enum class DigestAlgorithm { kSha256, kSha512 };

// The value of one hex digit (either case), or -1 for any other character.
[[nodiscard]] int HexDigitValue(char c);

class Digest {
 public:
  // The SHA-256 of no bytes: a default-constructed Digest is still a valid
  // digest, so structs holding one can be default-constructed and filled.
  Digest();

  // Parses "algorithm:hex". Errors: InvalidArgument naming what is wrong.
  [[nodiscard]] static Result<Digest> Parse(std::string_view text);

  // SHA-256 of a whole buffer.
  [[nodiscard]] static Digest Sha256Of(std::span<const std::byte> data);
  [[nodiscard]] static Digest Sha256Of(std::string_view data);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;
  const std::string& hex() const { return hex_; }
  // "sha256:abcd…"
  std::string str() const;
  // The first `n` hex characters, for short display ("abcdef012345").
  std::string_view short_hex(size_t n = 12) const;

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  Digest(DigestAlgorithm a, std::string hex) : algorithm_(a), hex_(std::move(hex)) {}
  DigestAlgorithm algorithm_;
  std::string hex_;
  friend class Sha256;
};

// Incremental SHA-256 over OpenSSL EVP (SHA-NI where the CPU has it).
// Not thread-safe; one instance per stream. Move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const std::byte> data);
  void Update(std::string_view data);
  void Update(const void* data, size_t len);
  // Bytes hashed so far.
  uint64_t size() const { return size_; }
  // Returns the digest of everything hashed; the object is reset after.
  [[nodiscard]] Digest Finish();
  // The digest of everything hashed so far, leaving the state as it is:
  // more bytes may be hashed after (a copy of the state is finished, not
  // the state; no byte is hashed again).
  [[nodiscard]] Digest Current() const;

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  uint64_t size_ = 0;
};

}  // namespace common

template <>
struct std::hash<common::Digest> {
  size_t operator()(const common::Digest& d) const noexcept {
    return std::hash<std::string>{}(d.hex());
  }
};
