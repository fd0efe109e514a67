#pragma once
// The public keys of a signedBy or sigstoreSigned requirement, read from
// where the policy says: keyPath / keyPaths (files) or keyData / keyDatas
// (already decoded by ParsePolicy).
//
// Thread-safe (reads files only).

#include <string>
#include <vector>

#include "common/error.h"
#include "trust/policy.h"

namespace trust {

struct PublicKeyBlob {
  // What errors name: the file's path, or "keyData" / "keyDatas[1]".
  std::string source;
  // The file's bytes: an armored or binary GPG keyring, or a PEM public key.
  std::string bytes;
};

// The keys of `requirement`, in the policy's order. Files are read whole
// (at most 1 MiB each). Errors: those of reading a file, with its path
// ("read key: open `/etc/pki/a.gpg`: No such file or directory");
// InvalidArgument when the requirement has no key source gantry reads
// (fulcio, pki, or a requirement type without keys).
[[nodiscard]] common::Result<std::vector<PublicKeyBlob>> LoadRequirementKeys(
    const Requirement& requirement);

}  // namespace trust
