#include "common/digest.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

namespace common {

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

// kIsHex[c]: c is one of kHexDigits (lower case only).
constexpr auto kIsHex = [] {
  std::array<bool, 256> t{};
  for (char c : kHexDigits) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

std::string ToHex(const unsigned char* p, size_t n) {
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[p[i] >> 4];
    out[2 * i + 1] = kHexDigits[p[i] & 0xf];
  }
  return out;
}

}  // namespace

Result<Digest> Digest::Parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return MakeError(Errc::kInvalidArgument,
                     "parse digest `" + std::string(text) + "`: missing `algorithm:` prefix");
  std::string_view algo = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  DigestAlgorithm a;
  size_t want;
  if (algo == "sha256") {
    a = DigestAlgorithm::kSha256;
    want = 64;
  } else if (algo == "sha512") {
    a = DigestAlgorithm::kSha512;
    want = 128;
  } else {
    return MakeError(Errc::kInvalidArgument, "parse digest `" + std::string(text) +
                                                 "`: unsupported algorithm `" + std::string(algo) +
                                                 "`");
  }
  if (hex.size() != want)
    return MakeError(Errc::kInvalidArgument, "parse digest `" + std::string(text) +
                                                 "`: " + std::string(algo) + " needs " +
                                                 std::to_string(want) + " hex characters, got " +
                                                 std::to_string(hex.size()));
  for (char c : hex) {
    if (!kIsHex[static_cast<unsigned char>(c)])
      return MakeError(Errc::kInvalidArgument,
                       "parse digest `" + std::string(text) + "`: hex must be lower-case [0-9a-f]");
  }
  return Digest(a, std::string(hex));
}

Digest::Digest()
    : algorithm_(DigestAlgorithm::kSha256),
      hex_("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {}

Digest Digest::Sha256Of(std::span<const std::byte> data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

Digest Digest::Sha256Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

std::string_view Digest::algorithm_name() const {
  return algorithm_ == DigestAlgorithm::kSha256 ? "sha256" : "sha512";
}

std::string Digest::str() const {
  std::string s(algorithm_name());
  s.push_back(':');
  s.append(hex_);
  return s;
}

std::string_view Digest::short_hex(size_t n) const { return std::string_view(hex_).substr(0, n); }

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  // Allocation failure or a missing SHA-256 is a broken invariant.
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) std::abort();
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t len) {
  if (len == 0) return;
  EVP_DigestUpdate(ctx_->md, data, len);
  size_ += len;
}
void Sha256::Update(std::span<const std::byte> data) { Update(data.data(), data.size()); }
void Sha256::Update(std::string_view data) { Update(data.data(), data.size()); }

Digest Sha256::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &n);
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
  size_ = 0;
  return Digest(DigestAlgorithm::kSha256, ToHex(out, n));
}

Digest Sha256::Current() const {
  Ctx copy;
  copy.md = EVP_MD_CTX_new();
  if (copy.md == nullptr || EVP_MD_CTX_copy_ex(copy.md, ctx_->md) != 1) std::abort();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(copy.md, out, &n);
  return Digest(DigestAlgorithm::kSha256, ToHex(out, n));
}

}  // namespace common
