#pragma once
// The compression of a layer blob: what its media type declares
// (oci/manifest.h, LayerCompressionOf) and what the unpacker decodes
// (unpack/apply.h, ApplyOptions::compression). One enum for both.

#include <string_view>

namespace oci {

enum class Compression { kNone, kGzip, kZstd };

// "none" | "gzip" | "zstd".
[[nodiscard]] constexpr std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "none";
}

}  // namespace oci
