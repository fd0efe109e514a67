#include "integration/pull/pull_helpers.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "common/fs.h"

#ifndef GANTRY_BIN
#error "GANTRY_BIN must name the gantry binary"
#endif

namespace pulltest {

common::Result<Gantry> Gantry::Create() {
  Gantry g;
  ASSIGN_OR_RETURN(g.dir_, common::TempDir::Create("gantry-pull"));
  g.root_ = g.dir_.path() / "root";
  g.registry_config_ = g.dir_.path() / "registry-config";
  g.docker_config_ = g.dir_.path() / "docker";
  g.runtime_dir_ = g.dir_.path() / "run";
  for (const fs::path& p : {g.registry_config_, g.docker_config_, g.runtime_dir_})
    TRY(common::MkdirAll(p, 0700));
  return g;
}

std::vector<std::string> Gantry::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {GANTRY_BIN, "--root", root_.string(), "--registry-config",
                                   registry_config_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::pair<std::string, std::string>> Gantry::Env() const {
  return {{"DOCKER_CONFIG", docker_config_.string()},
          {"XDG_RUNTIME_DIR", runtime_dir_.string()},
          {"NO_PROXY", "*"}};
}

common::Result<fixtures::CommandResult> Gantry::Run(const std::vector<std::string>& args,
                                                    std::string stdin_data) const {
  return fixtures::RunCommand(Argv(args), {.env = Env(),
                                           .cwd = dir(),
                                           .stdin_data = std::move(stdin_data),
                                           .timeout = std::chrono::seconds(60)});
}

common::Result<fixtures::Child> Gantry::Spawn(const std::vector<std::string>& args,
                                              const fs::path& out, const fs::path& err) const {
  return fixtures::Child::Spawn({.argv = Argv(args),
                                 .env = Env(),
                                 .stdout_path = out,
                                 .stderr_path = err,
                                 .cwd = dir(),
                                 .kill_grace = std::chrono::milliseconds(2000),
                                 .die_with_parent = true});
}

nlohmann::json Gantry::ImagesJson() const {
  auto r = Run({"images", "--json"});
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return nullptr;
  EXPECT_EQ(r->exit_code, 0) << Describe(*r);
  auto j = nlohmann::json::parse(r->out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(j.is_array()) << r->out;
  return j.is_array() ? j : nullptr;
}

std::vector<std::string> Gantry::ImageNames() const {
  std::vector<std::string> names;
  nlohmann::json j = ImagesJson();
  if (!j.is_array()) return names;
  for (const auto& img : j)
    if (img.contains("name") && img["name"].is_string()) names.push_back(img["name"]);
  return names;
}

std::map<std::string, std::string> SnapshotKinds(const Gantry& g) {
  std::map<std::string, std::string> out;
  auto r = g.Run({"snapshot", "ls", "--json"});
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return out;
  EXPECT_EQ(r->exit_code, 0) << Describe(*r);
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  EXPECT_TRUE(j.is_array()) << r->out;
  if (!j.is_array()) return out;
  for (const auto& s : j) out[s.value("key", "")] = s.value("kind", "");
  return out;
}

fs::path CommittedSnapshotDir(const Gantry& g, const std::string& key) {
  auto r = g.Run({"snapshot", "info", key});
  EXPECT_TRUE(r) << r.error().message;
  if (!r || r->exit_code != 0) {
    ADD_FAILURE() << "no snapshot " << key << (r ? "\n" + Describe(*r) : "");
    return {};
  }
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  EXPECT_EQ(j.value("kind", ""), "committed") << r->out;
  return g.root() / "snapshots" / std::to_string(j.value("id", -1)) / "fs";
}

std::vector<std::string> WithOpenFileLimit(uint64_t limit, const std::vector<std::string>& argv) {
  const std::string n = std::to_string(limit);
  std::vector<std::string> out = {"prlimit", "--nofile=" + n + ":" + n, "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void StartRegistry(fixtures::RegistryOptions options,
                   std::unique_ptr<fixtures::RegistryFixture>* out) {
  auto reg = fixtures::RegistryFixture::Start(std::move(options));
  ASSERT_TRUE(reg) << reg.error().message;
  *out = std::make_unique<fixtures::RegistryFixture>(std::move(*reg));
}

void StartProxy(const fixtures::RegistryFixture& reg, std::unique_ptr<fixtures::FaultProxy>* out) {
  ASSERT_FALSE(reg.tls()) << "the fault proxy speaks plain HTTP to its upstream";
  auto proxy = fixtures::FaultProxy::Start(reg.base_url());
  ASSERT_TRUE(proxy) << proxy.error().message;
  *out = std::move(*proxy);
}

void PushLayout(const fixtures::RegistryFixture& reg, const fs::path& layout,
                const std::string& layout_tag, const std::string& repo_tag) {
  auto flags = reg.SkopeoFlags("dest");
  ASSERT_TRUE(flags) << flags.error().message;
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--all",
                                   "--preserve-digests"};
  argv.insert(argv.end(), flags->begin(), flags->end());
  argv.push_back("oci:" + layout.string() + ":" + layout_tag);
  argv.push_back("docker://" + reg.host() + "/" + repo_tag);
  auto run = fixtures::RunCommand(argv, {.env = {},
                                         .cwd = layout.parent_path(),
                                         .stdin_data = {},
                                         .timeout = std::chrono::seconds(60)});
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_EQ(run->exit_code, 0) << run->Describe(argv) << "\nregistry log:\n" << reg.LogTail();
}

void PushImage(const fixtures::RegistryFixture& reg, const fs::path& layout,
               const fixtures::ImageSpec& spec, const std::string& repo_tag,
               fixtures::BuiltImage* out) {
  auto built = fixtures::WriteImage(layout, spec, "push");
  ASSERT_TRUE(built) << built.error().message;
  ASSERT_NO_FATAL_FAILURE(PushLayout(reg, layout, "push", repo_tag));
  *out = std::move(*built);
}

fixtures::ImageSpec SharedBaseSpec(const std::string& which) {
  fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
  spec.layers.resize(2);
  fixtures::LayerSpec own;
  own.entries = {fixtures::File("which.txt", which + "\n")};
  spec.layers.push_back(std::move(own));
  spec.labels["which"] = which;
  return spec;
}

std::vector<common::Digest> ImageDigests(const fixtures::BuiltImage& image) {
  std::vector<common::Digest> out = {image.manifest.digest, image.config.digest};
  for (const auto& l : image.layers) out.push_back(l.digest);
  return out;
}

const fixtures::BlobInfo& BiggestLayer(const fixtures::BuiltImage& image) {
  return *std::max_element(image.layers.begin(), image.layers.end(),
                           [](const auto& a, const auto& b) { return a.size < b.size; });
}

void ExpectBlobsInStore(const fs::path& root, const std::vector<common::Digest>& digests) {
  for (const common::Digest& d : digests) {
    const fs::path p = root / "content" / "blobs" / "sha256" / d.hex();
    auto data = common::ReadFile(p, 256u << 20);
    if (!data) {
      ADD_FAILURE() << "blob " << d.str() << " is not in the store: " << data.error().message;
      continue;
    }
    EXPECT_EQ(common::Digest::Sha256Of(*data), d) << p;
  }
}

void ExpectBlobAbsent(const fs::path& root, const common::Digest& digest) {
  const fs::path blob = root / "content" / "blobs" / "sha256" / digest.hex();
  const fs::path partial = root / "content" / "ingest" / ("sha256-" + digest.hex());
  EXPECT_FALSE(fs::exists(blob)) << blob << " must not exist";
  EXPECT_FALSE(fs::exists(partial)) << partial << " must not exist";
}

void ExpectNoIngestLeft(const fs::path& root) {
  const fs::path dir = root / "content" / "ingest";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    ADD_FAILURE() << "ingest file left behind: " << e.path();
  EXPECT_FALSE(ec) << dir << ": " << ec.message();
}

int64_t IngestSize(const fs::path& root, const common::Digest& digest) {
  struct stat st {};
  const fs::path p = root / "content" / "ingest" / ("sha256-" + digest.hex());
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

std::vector<fixtures::ProxyLogEntry> BlobGets(const std::vector<fixtures::ProxyLogEntry>& log,
                                              const common::Digest& digest) {
  std::vector<fixtures::ProxyLogEntry> out;
  for (const auto& e : log)
    if (e.method == "GET" && e.path.ends_with("/blobs/" + digest.str())) out.push_back(e);
  return out;
}

std::vector<nlohmann::json> JsonEvents(const std::string& out) {
  std::vector<nlohmann::json> events;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    if (j.is_object()) events.push_back(std::move(j));
  }
  return events;
}

int64_t FetchedBlobBytes(const std::vector<nlohmann::json>& events) {
  int64_t total = 0;
  for (const auto& e : events)
    if (e.value("event", "") == "layer-done" && e.value("state", "") == "done")
      total += e.value("total", int64_t{0});
  return total;
}

int64_t ResumedBlobBytes(const std::vector<nlohmann::json>& events, const std::string& except) {
  int64_t total = 0;
  for (const auto& e : events)
    if (e.value("event", "") == "layer-progress" && e.value("state", "") == "resumed" &&
        e.value("digest", "") != except)
      total += e.value("current", int64_t{0});
  return total;
}

std::string Describe(const fixtures::CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

void PullOk(const Gantry& g, const std::vector<std::string>& args, fixtures::CommandResult* out) {
  std::vector<std::string> argv = {"pull"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = g.Run(argv);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << Describe(*r);
  if (out != nullptr) *out = std::move(*r);
}

void ExpectSecondPullFetchesNoBlob(const Gantry& g, fixtures::FaultProxy& proxy,
                                   const std::vector<std::string>& args) {
  proxy.ClearLog();
  ASSERT_NO_FATAL_FAILURE(PullOk(g, args));
  EXPECT_EQ(proxy.CountRequests("GET", "/blobs/"), 0) << "the second pull fetched blobs again";
  EXPECT_GE(proxy.CountRequests("GET", "/manifests/"), 1) << "the reference is resolved again";
  for (const auto& e : proxy.Log())
    EXPECT_NE(e.path.find("/manifests/"), std::string::npos)
        << "only manifest requests expected, got " << e.method << " " << e.path;
}

}  // namespace pulltest
