// The socket of `gantry serve` (mode, group, a stale socket replaced, a live
// one refused, graceful SIGTERM) and pull progress over
// gantry.v1.PullProgress/Watch and `gantry pull --attach`, for pulls
// started by the server and by another process.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "integration/cri/cri_helpers.h"

namespace critest {
namespace {

class CriServe : public CriTest {};

// A socket file nobody listens on, as a crashed server leaves it.
void MakeStaleSocket(const fs::path& path) {
  common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
}

TEST_F(CriServe, StaleSocketReplacedModeAndGroupSetLiveOneRefusedSigtermGraceful) {
  const fs::path sock = gantry_->dir() / "g.sock";
  ASSERT_NO_FATAL_FAILURE(MakeStaleSocket(sock));
  const gid_t gid = ::geteuid() == 0 ? 65534 : ::getgid();
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(
      *gantry_, {"--socket-mode", "0640", "--socket-group", std::to_string(gid)}, &srv));
  struct stat st {};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_gid, gid);

  // A second server on the live socket is refused, and the first keeps it.
  auto second = gantry_->Run({"serve", "--listen", "unix://" + sock.string()});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_NE(second->exit_code, 0);
  EXPECT_NE(second->err.find("another gantry serve is listening on " + sock.string()),
            std::string::npos)
      << second->err;
  EXPECT_TRUE(List(*srv).empty());

  // SIGTERM: exit 0, socket removed.
  auto rc = srv->child().Terminate(std::chrono::seconds(20));
  ASSERT_TRUE(rc) << rc.error().message;
  EXPECT_EQ(*rc, 0) << srv->LogText();
  EXPECT_FALSE(fs::exists(sock));
  EXPECT_NE(srv->LogText().find("stopped"), std::string::npos) << srv->LogText();
}

TEST_F(CriServe, NotASocketIsRefused) {
  const fs::path sock = gantry_->dir() / "g.sock";
  ASSERT_TRUE(common::AtomicWriteFile(sock, "x"));
  auto r = gantry_->Run({"serve", "--listen", "unix://" + sock.string()});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE(r->err.find("is not a socket"), std::string::npos) << r->err;
}

TEST_F(CriServe, DebugLogNamesEachRequestWithItsDuration) {
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv));
  EXPECT_TRUE(List(*srv).empty());
  EXPECT_TRUE(fixtures::WaitUntil(
      [&] { return srv->LogText().find("method=ListImages") != std::string::npos; },
      std::chrono::seconds(10)))
      << srv->LogText();
  EXPECT_NE(srv->LogText().find("duration_ms="), std::string::npos);
}

// Socket activation as systemd does it (systemd-socket-activate holds the
// socket and execs gantry with LISTEN_FDS on the first connection): the
// server answers on the passed socket, and leaves the file to its owner.
TEST_F(CriServe, SystemdSocketActivation) {
  REQUIRE_TOOLS("systemd-socket-activate");
  const fs::path sock = gantry_->dir() / "act.sock";
  const fs::path log = gantry_->dir() / "act.log";
  std::vector<std::string> argv = {"systemd-socket-activate", "-l", sock.string()};
  for (const auto& a : gantry_->Argv({"serve", "--listen", "unix://" + sock.string()}))
    argv.push_back(a);
  auto child = fixtures::Child::Spawn({.argv = argv,
                                       .env = gantry_->Env(),
                                       .stdout_path = log,
                                       .stderr_path = log,
                                       .cwd = gantry_->dir(),
                                       .kill_grace = std::chrono::milliseconds(5000),
                                       .die_with_parent = true});
  ASSERT_TRUE(child) << child.error().message;
  ASSERT_TRUE(fixtures::WaitUntil([&] { return fs::exists(sock); }, std::chrono::seconds(10)));
  {
    auto channel = grpc::CreateChannel("unix:" + sock.string(), grpc::InsecureChannelCredentials());
    auto stub = runtime::v1::RuntimeService::NewStub(channel);
    runtime::v1::VersionResponse resp;
    auto ctx = Ctx(30);
    ctx->set_wait_for_ready(true);
    auto st = stub->Version(ctx.get(), {}, &resp);
    auto text = common::ReadFile(log);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << (text ? *text : "");
    EXPECT_EQ(resp.runtime_name(), "gantry");
  }
  auto rc = child->Terminate(std::chrono::seconds(20));
  ASSERT_TRUE(rc) << rc.error().message;
  auto text = common::ReadFile(log);
  EXPECT_EQ(*rc, 0) << (text ? *text : "");
  EXPECT_NE(text ? text->find("serving on the socket systemd passed") : std::string::npos,
            std::string::npos);
  EXPECT_TRUE(fs::exists(sock)) << "the activation socket belongs to its owner";
}

class CriProgress : public CriTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CriTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
    ref_ = proxy_->host() + "/fixture/app:v1";
  }

  void Trickle(int times) {
    proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                     .path_contains = "/blobs/" + pulltest::BiggestLayer(image_).digest.str(),
                     .times = times,
                     .interval = std::chrono::milliseconds(50)});
  }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage image_;
  std::string ref_;
};

TEST_F(CriProgress, NoPullInProgressIsNotFound) {
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv));
  gantry::v1::WatchRequest req;
  req.set_image(ref_);
  auto ctx = Ctx();
  auto reader = srv->progress->Watch(ctx.get(), req);
  gantry::v1::PullProgressEvent e;
  EXPECT_FALSE(reader->Read(&e));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  auto attach = gantry_->Run({"pull", "--attach", ref_});
  ASSERT_TRUE(attach) << attach.error().message;
  EXPECT_EQ(attach->exit_code, 3) << attach->err;
  EXPECT_NE(attach->err.find("no pull of"), std::string::npos) << attach->err;
}

// A CRI pull that trickles until the rate floor cancels it: Watch over the
// socket and `gantry pull --attach` in another process both follow it,
// per layer, to its failure.
TEST_F(CriProgress, WatchAndAttachFollowAServerPull) {
  Trickle(1);
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--min-rate-window", "4"}, &srv));
  grpc::Status pull_status;
  std::thread puller([&] { pull_status = Pull(*srv, ref_, nullptr); });

  gantry::v1::WatchRequest req;
  req.set_image(ref_);
  req.set_wait(true);
  auto ctx = Ctx();
  auto reader = srv->progress->Watch(ctx.get(), req);
  gantry::v1::PullProgressEvent e, last;
  bool saw_downloading = false;
  fixtures::Child attach;
  const fs::path attach_log = gantry_->dir() / "attach.log";
  while (reader->Read(&e)) {
    last = e;
    if (e.phase() == "downloading" && e.total_bytes() > 0 && !saw_downloading) {
      saw_downloading = true;
      EXPECT_EQ(e.layers_size(), static_cast<int>(image_.layers.size()));
      EXPECT_GT(e.pid(), 0);
      auto c = gantry_->Spawn({"pull", "--attach", ref_}, attach_log, attach_log);
      ASSERT_TRUE(c) << c.error().message;
      attach = std::move(*c);
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  puller.join();
  EXPECT_EQ(pull_status.error_code(), grpc::StatusCode::UNAVAILABLE) << pull_status.error_message();
  ASSERT_TRUE(saw_downloading);
  EXPECT_EQ(last.phase(), "failed");
  EXPECT_NE(last.error().find("bytes/s"), std::string::npos) << last.error();
  ASSERT_TRUE(attach.valid());
  auto rc = attach.WaitFor(fixtures::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(rc) << rc.error().message;
  ASSERT_TRUE(rc->has_value()) << "gantry pull --attach still runs";
  auto out = common::ReadFile(attach_log);
  ASSERT_TRUE(out);
  EXPECT_NE(**rc, 0) << *out;
  EXPECT_NE(out->find("downloading"), std::string::npos) << *out;
  EXPECT_NE(out->find("bytes/s"), std::string::npos) << *out;
}

// The unpack a server pull does after the download is in its progress
// record, as in `gantry pull`'s: each layer ends "unpacked" with all of its
// blob's bytes counted (before, the record said nothing of the unpack).
TEST_F(CriProgress, ServerPullRecordsEachLayerUnpacked) {
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv));
  auto st = Pull(*srv, ref_, nullptr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto text = common::ReadFile(gantry_->root() / "progress" /
                               (common::Digest::Sha256Of(ref_).hex() + ".json"));
  ASSERT_TRUE(text) << text.error().message;
  auto rec = nlohmann::json::parse(*text, nullptr, false);
  ASSERT_TRUE(rec.is_object()) << *text;
  EXPECT_EQ(rec["phase"], "done");
  ASSERT_EQ(rec["layers"].size(), image_.layers.size()) << *text;
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    const auto& l = rec["layers"][i];
    EXPECT_EQ(l["digest"], image_.layers[i].digest.str());
    EXPECT_EQ(l["state"], "unpacked") << l.dump();
    EXPECT_EQ(l["unpacked"], image_.layers[i].size) << l.dump();
  }
}

// A `gantry pull` in another process is visible over the socket.
TEST_F(CriProgress, WatchFollowsACliPull) {
  Trickle(1);
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv));
  const fs::path log = gantry_->dir() / "pull.log";
  auto cli = gantry_->Spawn({"pull", "--no-unpack", "--min-rate-window", "2", ref_}, log, log);
  ASSERT_TRUE(cli) << cli.error().message;

  gantry::v1::WatchRequest req;
  req.set_image(ref_);
  req.set_wait(true);
  auto ctx = Ctx(90);
  auto reader = srv->progress->Watch(ctx.get(), req);
  gantry::v1::PullProgressEvent e, last;
  bool saw_downloading = false;
  while (reader->Read(&e)) {
    last = e;
    if (e.phase() == "downloading") {
      saw_downloading = true;
      EXPECT_EQ(e.pid(), cli->pid()) << "the record names the pulling process";
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(saw_downloading);
  EXPECT_EQ(last.phase(), "done") << last.error();
  EXPECT_EQ(last.current_bytes(), last.total_bytes());
  EXPECT_EQ(last.eta_seconds(), 0);
  auto rc = cli->WaitFor(fixtures::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(rc && rc->has_value());
  auto out = common::ReadFile(log);
  EXPECT_EQ(**rc, 0) << (out ? *out : "");
}

}  // namespace
}  // namespace critest
