#pragma once
// Shared pieces of the `gantry pull` acceptance tests: the real CLI binary
// run as a subprocess against its own store root and a hermetic
// environment, images pushed into the registry fixture with skopeo, and
// checks on the store a pull leaves behind.
//
//   ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg));
//   fixtures::BuiltImage img;
//   ASSERT_NO_FATAL_FAILURE(PushImage(*reg, g.dir() / "layout", fixtures::FixtureImageSpec(),
//                                     "fixture/app:v1", &img));
//   ASSERT_NO_FATAL_FAILURE(PullOk(g, {reg->host() + "/fixture/app:v1"}));
//   ExpectBlobsInStore(g.root(), ImageDigests(img));

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"

namespace pulltest {

namespace fs = std::filesystem;

// The gantry binary with its own store root and a hermetic environment:
// --registry-config points at an empty directory of this test (never
// /etc/gantry), DOCKER_CONFIG and XDG_RUNTIME_DIR at directories of this
// test (never the user's credentials). Move-only (owns its temp dir).
class Gantry {
 public:
  [[nodiscard]] static common::Result<Gantry> Create();

  const fs::path& root() const { return root_; }
  const fs::path& registry_config() const { return registry_config_; }
  const fs::path& docker_config() const { return docker_config_; }
  const fs::path& dir() const { return dir_.path(); }

  // GANTRY_BIN --root ROOT --registry-config DIR <args…>
  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  std::vector<std::pair<std::string, std::string>> Env() const;

  // Runs gantry to completion (60 s at most).
  [[nodiscard]] common::Result<fixtures::CommandResult> Run(const std::vector<std::string>& args,
                                                            std::string stdin_data = {}) const;
  // Starts gantry, stdout and stderr going to the given files.
  [[nodiscard]] common::Result<fixtures::Child> Spawn(const std::vector<std::string>& args,
                                                      const fs::path& out,
                                                      const fs::path& err) const;

  // `gantry images --json`, parsed. Fails the test (and returns null) when
  // it does not exit 0 or is not a JSON array.
  nlohmann::json ImagesJson() const;
  // The names `gantry images --json` lists.
  std::vector<std::string> ImageNames() const;

 private:
  common::TempDir dir_;
  fs::path root_, registry_config_, docker_config_, runtime_dir_;
};

// `argv` run with RLIMIT_NOFILE `limit`, soft and hard, through
// util-linux's prlimit(1): what `ulimit -n LIMIT` in bash (which sets both)
// gives the commands it starts. With the hard limit that low too, gantry
// cannot raise its soft limit at start-up.
std::vector<std::string> WithOpenFileLimit(uint64_t limit, const std::vector<std::string>& argv);

// Starts a registry fixture; fails the test on error.
void StartRegistry(fixtures::RegistryOptions options,
                   std::unique_ptr<fixtures::RegistryFixture>* out);
// A fault proxy in front of a plain-HTTP registry; fails the test on error.
void StartProxy(const fixtures::RegistryFixture& reg, std::unique_ptr<fixtures::FaultProxy>* out);

// Writes `spec` into the OCI layout `layout` (tag "push") and pushes it
// with skopeo to `reg` as `repo_tag` ("fixture/app:v1"), keeping digests.
void PushImage(const fixtures::RegistryFixture& reg, const fs::path& layout,
               const fixtures::ImageSpec& spec, const std::string& repo_tag,
               fixtures::BuiltImage* out);
// Pushes whatever the layout holds under `layout_tag` (an image or an
// index, with every manifest it lists) to `reg` as `repo_tag`.
void PushLayout(const fixtures::RegistryFixture& reg, const fs::path& layout,
                const std::string& layout_tag, const std::string& repo_tag);

// The fixture image's first two layers, then a layer of its own holding
// `which` (images that share their base layers).
fixtures::ImageSpec SharedBaseSpec(const std::string& which);

// The manifest, config and layer digests of a built image.
std::vector<common::Digest> ImageDigests(const fixtures::BuiltImage& image);
// The biggest layer of an image (the one worth cutting, stalling, …).
const fixtures::BlobInfo& BiggestLayer(const fixtures::BuiltImage& image);

// Every digest has a file content/blobs/sha256/<hex> under `root` whose
// SHA-256 is that digest.
void ExpectBlobsInStore(const fs::path& root, const std::vector<common::Digest>& digests);
// No committed blob and no ingest file for `digest` under `root`.
void ExpectBlobAbsent(const fs::path& root, const common::Digest& digest);
// content/ingest under `root` is empty (a successful pull leaves nothing).
void ExpectNoIngestLeft(const fs::path& root);
// The size of the partial download of `digest` (-1 when there is none).
int64_t IngestSize(const fs::path& root, const common::Digest& digest);

// Entries of `log` for GET requests of `digest`'s blob.
std::vector<fixtures::ProxyLogEntry> BlobGets(const std::vector<fixtures::ProxyLogEntry>& log,
                                              const common::Digest& digest);

// The lines of `gantry pull --json` output, each parsed as a JSON object
// (a line that is not one fails the test).
std::vector<nlohmann::json> JsonEvents(const std::string& out);
// The sizes of the blobs a pull downloaded, from its --json events: the
// sum of `total` over layer-done events in state "done".
int64_t FetchedBlobBytes(const std::vector<nlohmann::json>& events);
// The bytes a pull found in partials left by earlier pulls, from its --json
// events: the sum of `current` over layer-progress events in state
// "resumed", leaving out `except` (a blob whose partial was dropped).
int64_t ResumedBlobBytes(const std::vector<nlohmann::json>& events, const std::string& except = {});

// `gantry snapshot ls --json` of `g`: key -> kind. Fails the test (and
// returns what it has) when the command fails or prints no JSON array.
std::map<std::string, std::string> SnapshotKinds(const Gantry& g);
// The fs directory of the committed snapshot `key` of `g`, from `gantry
// snapshot info`; fails the test (and returns "") when there is none.
fs::path CommittedSnapshotDir(const Gantry& g, const std::string& key);

// "argv…: exit N: stderr" of a finished gantry run, for failure messages.
std::string Describe(const fixtures::CommandResult& r);

// Runs `gantry pull <args…>` expecting exit 0.
void PullOk(const Gantry& g, const std::vector<std::string>& args,
            fixtures::CommandResult* out = nullptr);

// Pulls `args` again through `proxy` and checks that only manifests were
// requested: no GET of a blob.
void ExpectSecondPullFetchesNoBlob(const Gantry& g, fixtures::FaultProxy& proxy,
                                   const std::vector<std::string>& args);

}  // namespace pulltest
