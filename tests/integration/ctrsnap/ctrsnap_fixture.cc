#include "integration/ctrsnap/ctrsnap_fixture.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "oci/manifest.h"

namespace ctrsnaptest {

using namespace std::chrono_literals;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ContainerdFixture::SetUp() {
  REQUIRE_ROOT("containerd, mounts");
  REQUIRE_TOOLS("containerd", "ctr", "ctr-remote", "containerd-shim-runc-v2", "runc",
                "docker-registry", "skopeo");
  REQUIRE_BUSYBOX();
  auto g = pulltest::Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &img_));
  chains_.clear();
  for (const auto& c : oci::ChainIds(img_.diff_ids)) chains_.push_back(c.str());

  auto d = common::TempDir::Create("gsnap");
  ASSERT_TRUE(d) << d.error().message;
  dir_ = std::move(*d);
  snap_socket_ = dir_.path() / "s.sock";
  ASSERT_NO_FATAL_FAILURE(StartServe());

  auto started = fixtures::Containerd::Start(
      {.dir = dir_.path(),
       .config = "[proxy_plugins.gantry]\n  type = \"snapshot\"\n  address = \"" +
                 snap_socket_.string() + "\"\n",
       .debug_log = true,
       .ns = "gs" + std::to_string(::getpid())});
  ASSERT_TRUE(started) << started.error().message;
  containerd_ = std::move(*started);
  ref_ = proxy_->host() + "/fixture/app:v1";
}

void ContainerdFixture::TearDown() {
  if (containerd_) {
    (void)Ctr({"images", "rm", "--sync", ref_});
    containerd_.reset();
  }
  serve_.reset();  // after containerd: it talks to the door until it stops
}

void ContainerdFixture::StartServe() {
  // A new CRI socket (and log) each time; the snapshotter socket stays.
  ASSERT_NO_FATAL_FAILURE(critest::CriServer::Start(
      *gantry_, {"--snapshotter-listen", "unix://" + snap_socket_.string()}, &serve_,
      "g" + std::to_string(serve_starts_++) + ".sock"));
  ASSERT_TRUE(fs::exists(snap_socket_)) << serve_->LogText();
}

void ContainerdFixture::KillServe() {
  ASSERT_TRUE(serve_);
  ASSERT_FALSE(serve_->child().Exited()) << serve_->LogText();
  ASSERT_EQ(::kill(serve_->child().pid(), SIGKILL), 0);
  auto st = serve_->child().Wait();
  ASSERT_TRUE(st) << st.error().message;
  serve_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServe());
}

std::vector<std::string> ContainerdFixture::ToolArgv(const std::string& tool,
                                                     const std::vector<std::string>& args) const {
  return containerd_->ToolArgv(tool, args);
}

fixtures::CommandResult ContainerdFixture::Tool(const std::string& tool,
                                                const std::vector<std::string>& args,
                                                std::chrono::milliseconds timeout) {
  return containerd_->Tool(tool, args, timeout);
}

std::string ContainerdFixture::Logs() {
  return "\n--- gantry serve:\n" + (serve_ ? serve_->LogText() : std::string("(not running)")) +
         "\n--- containerd:\n" + (containerd_ ? containerd_->Log() : std::string("(not running)"));
}

fixtures::CommandResult ContainerdFixture::Gantry(const std::vector<std::string>& args) {
  auto r = gantry_->Run(args);
  if (!r) {
    fixtures::CommandResult f;
    f.err = r.error().message;
    return f;
  }
  return *r;
}

nlohmann::json ContainerdFixture::Df() {
  auto r = Gantry({"df", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out;
  return j.is_object() ? j : nlohmann::json::object();
}

void ContainerdFixture::Snapshots(std::set<std::string>* committed, std::set<std::string>* held) {
  for (const auto& s : Df().value("snapshots", nlohmann::json::array())) {
    if (s.value("kind", "") != "committed") continue;
    committed->insert(s.value("key", ""));
    if (s.value("containerd", false)) held->insert(s.value("key", ""));
  }
}

int ContainerdFixture::HeldCount() {
  return Df().value("containerd", nlohmann::json::object()).value("snapshots", -1);
}

void ContainerdFixture::RunPrints(const std::string& id) {
  auto r =
      Ctr({"run", "--rm", "--snapshotter", "gantry", ref_, id, "sh", "-c", "echo hello-$((6*7))"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  EXPECT_EQ(r.out, "hello-42\n") << r.err;
}

}  // namespace ctrsnaptest
