#include "integration/ctrsnap/ctrcri_fixture.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"

namespace ctrcritest {

using namespace std::chrono_literals;

namespace {

constexpr char kPython[] = "/usr/bin/python3";

// A command that could not run as a result whose exit code is -1 and whose
// `err` says why, for the failure messages.
fixtures::CommandResult OrFailure(common::Result<fixtures::CommandResult> r) {
  if (r) return std::move(*r);
  fixtures::CommandResult f;
  f.exit_code = -1;
  f.err = r.error().message;
  return f;
}

}  // namespace

std::string ReadText(const fs::path& p) {
  auto text = common::ReadFile(p);
  return text ? *text : text.error().message;
}

void CriContainerdFixture::SetUp() {
  REQUIRE_ROOT("containerd, mounts");
  REQUIRE_TOOLS("containerd", "ctr", "containerd-shim-runc-v2", "runc", "docker-registry",
                "skopeo");
  REQUIRE_BUSYBOX();
  auto probe = fixtures::RunCommand({kPython, "-c", "import grpc, grpc_tools.protoc"}, {});
  ASSERT_TRUE(probe && probe->exit_code == 0)
      << "python3-grpcio and python3-grpc-tools are not installed: run scripts/setup.sh";
  auto g = pulltest::Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));

  auto d = common::TempDir::Create("gcri");
  ASSERT_TRUE(d) << d.error().message;
  dir_ = std::move(*d);
  const fs::path snap_socket = dir_.path() / "s.sock";
  std::vector<std::string> serve_args = {"--snapshotter-listen", "unix://" + snap_socket.string()};
  for (std::string& a : ExtraServeArgs()) serve_args.push_back(std::move(a));
  ASSERT_NO_FATAL_FAILURE(critest::CriServer::Start(*gantry_, serve_args, &serve_));

  // containerd's configuration is what `gantry containerd-config` prints
  // (the proxy plugin, the CRI plugin's snapshotter and registry
  // config_path, one hosts.toml), plus what this test's containerd needs
  // of its own. The hosts.toml's mirror is the proxy itself, so that
  // every request containerd sends is counted.
  const fs::path certs = dir_.path() / "certs.d";
  auto cc =
      Gantry({"containerd-config", "--snapshotter-socket", snap_socket.string(), "--certs-dir",
              certs.string(), "--mirror", "http://" + proxy_->host(), proxy_->host()});
  ASSERT_EQ(cc.exit_code, 0) << cc.out << cc.err;
  std::string fragment;
  ASSERT_NO_FATAL_FAILURE(InstallPrinted(cc.out, certs, &fragment));
  ASSERT_TRUE(fs::exists(certs / proxy_->host() / "hosts.toml")) << cc.out;

  // No CNI: pods use the host's network. No AppArmor profile. This
  // machine runs in a container whose processes may not lower their
  // oom_score_adj below their own (runc fails "failed to update
  // /proc/self/oom_score_adj: Permission denied" for the sandbox's
  // -998), so the CRI plugin clamps it to containerd's.
  const std::string cni = (dir_.path() / "cni").string();
  fs::create_directories(cni);
  std::string config = fragment;  // starts with `version = 2`, then its tables
  config += "\n[plugins.\"io.containerd.grpc.v1.cri\"]\n";
  config += "  sandbox_image = \"" + proxy_->host() + "/fixture/pause:v1\"\n";
  config += "  disable_apparmor = true\n  restrict_oom_score_adj = true\n";
  config += "[plugins.\"io.containerd.grpc.v1.cri\".cni]\n";
  config += "  bin_dir = \"" + cni + "\"\n  conf_dir = \"" + cni + "\"\n";
  containerd_options_ = {
      .dir = dir_.path(), .config = config, .cri = true, .debug_log = true, .ns = "k8s.io"};
  ASSERT_NO_FATAL_FAILURE(StartContainerd());
  ASSERT_EQ(containerd_->address(), ContainerdSocket().string());
}

void CriContainerdFixture::TearDown() {
  // What a failed test left running: containers and sandboxes alike are
  // tasks of the namespace k8s.io; their mounts go with containerd.
  containerd_.reset();
  serve_.reset();  // after containerd: it talks to the door until it stops
}

void CriContainerdFixture::StopContainerd() {
  ASSERT_TRUE(containerd_) << "containerd is not running";
  containerd_.reset();
}

void CriContainerdFixture::StartContainerd() {
  ASSERT_FALSE(containerd_) << "containerd is running";
  auto started = fixtures::Containerd::Start(containerd_options_);
  ASSERT_TRUE(started) << started.error().message;
  containerd_ = std::move(*started);
}

// Splits what `gantry containerd-config` printed at its "# PATH" comment
// lines: the config.toml fragment into `fragment`, each hosts.toml (which
// must go under `certs`) written where its comment says.
void CriContainerdFixture::InstallPrinted(const std::string& printed, const fs::path& certs,
                                          std::string* fragment) {
  std::istringstream in(printed);
  std::string path, text;
  auto flush = [&] {
    if (path.empty()) return;
    if (path == "/etc/containerd/config.toml") {
      *fragment = text;
      return;
    }
    ASSERT_EQ(path.rfind(certs.string() + "/", 0), 0u) << path;
    fs::create_directories(fs::path(path).parent_path());
    ASSERT_TRUE(common::AtomicWriteFile(path, text, 0644));
  };
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# /", 0) == 0) {
      ASSERT_NO_FATAL_FAILURE(flush());
      path = line.substr(2);
      text.clear();
      continue;
    }
    text += line + "\n";
  }
  ASSERT_NO_FATAL_FAILURE(flush());
  ASSERT_EQ(fragment->rfind("version = 2\n", 0), 0u) << printed;
}

fixtures::CommandResult CriContainerdFixture::Run(const std::vector<std::string>& argv) {
  fixtures::RunOptions options;
  options.timeout = 180s;
  return OrFailure(fixtures::RunCommand(argv, options));
}

fixtures::CommandResult CriContainerdFixture::Ctr(const std::vector<std::string>& args) {
  return containerd_->Ctr(args);
}

fixtures::CommandResult CriContainerdFixture::Gantry(const std::vector<std::string>& args) {
  return OrFailure(gantry_->Run(args));
}

fixtures::CommandResult CriContainerdFixture::Cri(const std::vector<std::string>& args,
                                                  const fs::path& socket) {
  std::vector<std::string> argv = {kPython, GANTRY_CRI_PY_CLIENT, GANTRY_CRI_PROTO_DIR,
                                   (dir_.path() / "py").string(),
                                   (socket.empty() ? ContainerdSocket() : socket).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

std::string CriContainerdFixture::Logs() {
  return "\n--- gantry serve:\n" + serve_->LogText() + "\n--- containerd:\n" +
         (containerd_ ? containerd_->Log() : std::string("(stopped)"));
}

void CriContainerdFixture::PushAppAndPause(fixtures::BuiltImage* app, fixtures::BuiltImage* pause) {
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*reg_, gantry_->dir() / "layout",
                                              fixtures::FixtureImageSpec(), "fixture/app:v1", app));
  fixtures::ImageSpec pause_spec = fixtures::FixtureImageSpec();
  pause_spec.cmd = {"/bin/sleep", "3600"};
  ASSERT_NO_FATAL_FAILURE(
      pulltest::PushImage(*reg_, gantry_->dir() / "layout", pause_spec, "fixture/pause:v1", pause));
}

void CriContainerdFixture::ExpectNoLayerGets(const fixtures::BuiltImage& img) {
  EXPECT_GT(proxy_->CountRequests("", "/manifests/"), 0) << "containerd went through the proxy";
  for (const auto& l : img.layers)
    EXPECT_EQ(proxy_->CountRequests("GET", l.digest.str()), 0) << "layer " << l.digest.str();
}

int CriContainerdFixture::HeldCount() {
  auto r = Gantry({"df", "--json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object()) return -1;
  return j.value("containerd", nlohmann::json::object()).value("snapshots", -1);
}

}  // namespace ctrcritest
