#pragma once
// Image configs at and over the limits of oci/manifest.h
// (kMaxConfigSize, kMaxConfigValues), for the tests that serve them
// (HostileRegistry*) and those that find them in a store (HostileRegistry*,
// CriRpc*).
//
//   std::string bad = hostiletest::EmptyEnvConfig(honest_config_json);
//   common::Digest d;
//   ASSERT_NO_FATAL_FAILURE(hostiletest::RecordWithConfig(g, base_ref, "x/y:bad", bad, &d));
//   // `gantry inspect x/y:bad` now finds a config the limits refuse.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/digest.h"
#include "integration/pull/pull_helpers.h"

namespace hostiletest {

// Values in a JSON tree, counted as the config limit counts them: every
// scalar, array and object.
int64_t CountValues(const nlohmann::json& j);

// `config` (JSON text) with `Env` made of `n` strings of `length` bytes.
// Built as text: millions of strings would cost a tree here what they
// cost gantry before the limits.
std::string WithEnv(const std::string& config, size_t n, size_t length);

// The config of issue 20, made from `config`: its `Env` is empty strings
// up to just under the 16 MiB cap, 5.6 million of them. Before the limits
// a pull of it peaked at 1.39 GB, and each later inspect, fsck or bundle
// at 700-850 MB.
std::string EmptyEnvConfig(const std::string& config);

// A config made from `config` at both limits: 100,000 values and nearly
// 16 MiB, the values being Env strings of one length (the costliest shape
// we found: each string is held in the tree and copied into ImageConfig).
std::string ConfigAtTheLimits(const std::string& config);

// Records in `g`'s store the image `base` (already pulled) again as
// `name`, with `config` as its config: the config and a manifest of base's
// layers written into the content store, their rows and the image record,
// through the store's own interfaces, as a pull that accepted the config
// would have left them (an older gantry's, for a config the limits now
// refuse). Sets `config_digest`; fails the test on error.
void RecordWithConfig(const pulltest::Gantry& g, const std::string& base, const std::string& name,
                      const std::string& config, common::Digest* config_digest);

}  // namespace hostiletest
